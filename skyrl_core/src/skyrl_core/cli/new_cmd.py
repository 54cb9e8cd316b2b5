"""``skyrl new env NAME [--output-dir DIR] [--force]``: generate a plugin package from a template."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from skyrl_core.errors import UserError


@click.group()
def new() -> None:
    """Create a new plugin package: skyrl new env NAME."""


def _shell_path(path: Path) -> str:
    text = str(path)
    if not path.is_absolute() and not text.startswith("."):
        text = f"./{text}"
    return shlex.quote(text)


def _name_notes(name: str, dist_name: str) -> list[str]:
    """Notes about installed plugins that already register ``name`` (best effort: plugin errors are ignored)."""
    from skyrl_core.plugins import get_plugin_manager
    from skyrl_core.registry import label_of

    notes: list[str] = []
    try:
        pm = get_plugin_manager()
        for kind in ("environments", "datasets"):
            registry = pm.registry(kind)
            if name not in registry:
                continue
            plugin = registry.entry(name).plugin
            if plugin.distribution.replace("_", "-").lower() == dist_name:
                note = (f"{plugin.distribution} {plugin.version} is already installed; installing the new package "
                        "replaces it")
            else:
                note = (f"{label_of(kind)} '{name}' is already registered by {plugin.distribution} "
                        f"{plugin.version}; skyrl stops with an error when two installed plugins register the same "
                        "name, so uninstall one of them or pick another NAME")
            if note not in notes:
                notes.append(note)
    except UserError:  # a broken or duplicate plugin: not this command's business
        return []
    return notes


@new.command("env")
@click.argument("name")
@click.option("--output-dir", type=click.Path(), default=None,
              help="Folder to create the package in.  [default: ./skyrl-env-NAME]")
@click.option("--force", is_flag=True, help="Write into a non-empty folder, overwriting the generated files.")
def env(name: str, output_dir: str | None, force: bool) -> None:
    """Generate the package skyrl-env-NAME: an environment, its dataset builder, tests and a README.

    NAME is the env's registered name (lowercase letters, digits, '_' and '-', starting with a letter). The
    package is a small working example (reverse a word, answer in \\boxed{}) to edit into your own task.
    """
    from skyrl_core.scaffold import EnvNames, generate_env
    from skyrl_core.scaffold.generator import default_output_dir

    names = EnvNames.from_name(name)
    target = Path(output_dir) if output_dir is not None else default_output_dir(name)
    written = generate_env(name, target, force=force)
    click.echo(f"created {names.dist_name} (env and dataset '{name}', package {names.import_name}) in {target}:")
    for path in written:
        click.echo(f"  {path.relative_to(target).as_posix()}")
    for note in _name_notes(name, names.dist_name):
        click.echo(f"note: {note}")
    folder = _shell_path(target)
    click.echo("\nnext:")
    click.echo(f"  pip install -e {folder}")
    click.echo(f"  pytest {_shell_path(target / 'tests')}")
    click.echo(f"  skyrl data {name} --output-dir data/{name}")
    click.echo(f"  skyrl run --env {name} --algo grpo trainer.policy.model.path=Qwen/Qwen2.5-0.5B-Instruct")
