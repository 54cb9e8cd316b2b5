"""The docs stay true to the code: hook signatures, the generated config reference, links, the README's commands."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from skyrl_core import hookspecs
from skyrl_core.config import docs as config_docs
from skyrl_core.plugins import PluginManager

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS_PAGE = DOCS / "plugins" / "hooks.md"
MARKDOWN_FILES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)


def hook_signature(name: str) -> str:
    """``register_environments(register)``: the hook's name and its parameter names."""
    spec = getattr(hookspecs, name)
    return f"{name}({', '.join(inspect.signature(spec).parameters)})"


def live_hooks() -> list[str]:
    """Every hookspec of a live plugin manager (not a hand-kept list)."""
    manager = PluginManager(entry_points=False)
    return sorted(name for name, caller in vars(manager.pm.hook).items() if caller.has_spec())


@pytest.mark.parametrize("hook", live_hooks())
def test_every_hook_is_documented_with_its_signature(hook):
    signature = hook_signature(hook)
    assert signature in HOOKS_PAGE.read_text(), (
        f"docs/plugins/hooks.md does not document `{signature}`; add a section for it (signature, what `register` "
        f"takes, its config section, when it is called, an example)"
    )


@pytest.mark.parametrize("kind", hookspecs.KIND_RECORDS, ids=lambda k: k.name)
def test_hooks_page_names_each_kinds_settings_path(kind):
    assert f"`{kind.section_path('<name>')}`" in HOOKS_PAGE.read_text(), (
        f"docs/plugins/hooks.md does not say that {kind.name} settings live at `{kind.section_path('<name>')}`")


def test_config_reference_is_up_to_date():
    path = DOCS / "config.md"
    assert path.is_file(), "docs/config.md is missing; run `make docs`"
    assert path.read_text() == config_docs.generate(), (
        "docs/config.md differs from the config classes; run `make docs` and commit the result"
    )


def relative_links(text: str) -> list[str]:
    """Targets of the markdown links in ``text`` that point into the repository (code blocks and spans skipped)."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text)
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#|//)", t, re.IGNORECASE)]


def test_link_extraction():
    text = (
        "[a](docs/a.md) [b](https://x.org/b.md) [c](#anchor) [d](../d.md#part) `[e](e.md)`\n"
        '```\n[f](f.md)\n```\n[g]: g.md\n![img](img/x.png "title")\n[m](mailto:a@b.c)'
    )
    assert relative_links(text) == ["docs/a.md", "../d.md#part", "img/x.png", "g.md"]


@pytest.mark.parametrize("page", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page):
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing"
    broken = []
    for target in relative_links(page.read_text()):
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not path:
            continue
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to files that do not exist: {', '.join(broken)}"


def test_readme_opens_with_make_demo_and_make_test():
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    opening = [line for line in lines[:4] if not line.startswith("```")]
    assert len(opening) >= 2, "README.md must open with the `make demo` and `make test` commands"
    assert opening[0].startswith("make demo"), f"README.md's first command must be `make demo`, not {opening[0]!r}"
    assert opening[1].startswith("make test"), f"README.md's second command must be `make test`, not {opening[1]!r}"
