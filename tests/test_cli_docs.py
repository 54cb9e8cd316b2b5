"""docs/cli.md stays in step with the click commands: every command has a section that names all its options,
and a section names no option the command lacks."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from skyrl_core.cli.main import _register_commands, cli

CLI_PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def commands(group: click.Group = cli, prefix: str = "skyrl"):
    """(``skyrl config show``, command) of every leaf command."""
    _register_commands()
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield path, command


def doc_sections() -> dict[str, str]:
    """Heading ``## `skyrl x y` `` -> its text."""
    text = CLI_PAGE.read_text()
    parts = re.split(r"^## `(skyrl[^`]*)`.*$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


COMMANDS = list(commands())


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_and_option_is_documented(path, command):
    sections = doc_sections()
    assert path in sections, f"docs/cli.md has no section '## `{path}`'"
    text = sections[path]
    options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts if o.startswith("--")}
    missing = sorted(o for o in options - {"--help"} if o not in text)
    assert not missing, f"docs/cli.md's `{path}` section does not mention {missing}"
    usage = "\n".join(line for line in text.splitlines() if line.startswith((path + " ", "| `--")))
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", usage))
    unknown = sorted(mentioned - options - {"--help", "--debug", "--version"})
    assert not unknown, f"docs/cli.md's `{path}` section mentions options `{path}` does not have: {unknown}"


def test_top_level_options_are_documented():
    head = CLI_PAGE.read_text().split("\n## ", 1)[0]
    for param in cli.params:
        for opt in (o for o in param.opts if o.startswith("--")):
            assert opt in head, f"docs/cli.md's opening does not document `skyrl {opt}`"
