"""Render a plugin package from the templates in ``skyrl_core/scaffold/templates``.

A template tree mirrors the package it produces. Every file ends in ``.tmpl`` (so the templates are never imported,
collected by pytest, or linted as code); the suffix is dropped on output. Placeholders are ``{{key}}`` strings,
replaced with :meth:`str.replace` in file contents; the folder name ``__import_name__`` becomes the import name.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import attrs

from skyrl_core.errors import UserError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TEMPLATE_SUFFIX = ".tmpl"
_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PLACEHOLDER_RE = re.compile(r"\{\{[a-z_]+\}\}")
MAX_NAME_LENGTH = 64


@attrs.frozen
class EnvNames:
    """The names derived from an env name (``my-env``)."""

    name: str  #: ``my-env``: the registered env/dataset name and the entry point name
    dist_name: str  #: ``skyrl-env-my-env``: the distribution name on PyPI
    import_name: str  #: ``skyrl_env_my_env``: the Python package
    class_prefix: str  #: ``MyEnv``: prefix of the generated classes (``MyEnvEnv``, ``MyEnvDataConfig``, ...)

    @classmethod
    def from_name(cls, name: str) -> EnvNames:
        validate_name(name)
        return cls(
            name=name,
            dist_name=f"skyrl-env-{name}",
            import_name=f"skyrl_env_{name.replace('-', '_')}",
            class_prefix="".join(part.capitalize() for part in re.split(r"[-_]", name)),
        )


def validate_name(name: str) -> None:
    """Raise :class:`UserError` unless ``name`` is a valid env name (``wordcount``, ``my-env``, ``math_v2``)."""
    if not _NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:
        raise UserError(
            f"invalid env name {name!r}: use lowercase letters, digits, '_' and '-', starting with a letter, "
            f"with no '_'/'-' at the end or twice in a row, at most {MAX_NAME_LENGTH} characters "
            "(e.g. 'wordcount', 'my-env')"
        )


def core_requirement() -> str:
    """The ``skyrl-core`` requirement of a generated package: at least the installed minor version."""
    from skyrl_core import __version__

    match = re.match(r"^(\d+)\.(\d+)", __version__)
    return f"skyrl-core>={match.group(1)}.{match.group(2)}" if match else "skyrl-core"


def substitutions(names: EnvNames) -> dict[str, str]:
    """Placeholder -> value for the templates."""
    return {
        "{{name}}": names.name,
        "{{dist_name}}": names.dist_name,
        "{{import_name}}": names.import_name,
        "{{class_prefix}}": names.class_prefix,
        "{{core_requirement}}": core_requirement(),
    }


def _template_files(root: Traversable, prefix: PurePosixPath = PurePosixPath()) -> list[tuple[PurePosixPath, str]]:
    """(relative path without ``.tmpl``, content) of every template under ``root``, sorted."""
    files: list[tuple[PurePosixPath, str]] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            files += _template_files(entry, prefix / entry.name)
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            files.append((prefix / entry.name[: -len(TEMPLATE_SUFFIX)], entry.read_text(encoding="utf-8")))
    return files


def render(template: str, values: dict[str, str]) -> str:
    """``template`` with every placeholder replaced; a placeholder without a value is an error."""
    for key, value in values.items():
        template = template.replace(key, value)
    left = _PLACEHOLDER_RE.findall(template)
    if left:
        raise RuntimeError(f"template placeholders without a value: {sorted(set(left))}")
    return template


def render_env(name: str) -> dict[PurePosixPath, str]:
    """The files of the package ``skyrl-env-<name>``: relative path -> content."""
    names = EnvNames.from_name(name)
    values = substitutions(names)
    root = resources.files("skyrl_core.scaffold").joinpath("templates", "env")
    rendered: dict[PurePosixPath, str] = {}
    for path, content in _template_files(root):
        out = PurePosixPath(*(names.import_name if part == "__import_name__" else part for part in path.parts))
        rendered[out] = render(content, values)
    return rendered


def default_output_dir(name: str) -> Path:
    return Path(f"skyrl-env-{name}")


def generate_env(name: str, output_dir: str | Path | None = None, *, force: bool = False) -> list[Path]:
    """Write the package ``skyrl-env-<name>`` into ``output_dir`` (default ``./skyrl-env-<name>``).

    Refuses a non-empty existing folder unless ``force`` (then the generated files are overwritten and other files
    are left alone). Returns the written files, in order.
    """
    files = render_env(name)  # validates the name first
    target = Path(output_dir) if output_dir is not None else default_output_dir(name)
    if target.exists() and not target.is_dir():
        raise UserError(f"'{target}' exists and is not a folder; choose another --output-dir")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise UserError(
            f"'{target}' already exists and is not empty; choose another --output-dir, or pass --force to "
            "overwrite the generated files in it"
        )
    written: list[Path] = []
    for relative, content in files.items():
        path = target.joinpath(*relative.parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write '{path}': {exc.strerror or exc}") from exc
        written.append(path)
    return written
