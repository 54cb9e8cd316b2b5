"""``skyrl plugins``: what is installed and what each plugin registered."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from skyrl_core.cli.common import console
from skyrl_core.hookspecs import KIND_RECORDS
from skyrl_core.plugins import PluginManager, get_plugin_manager
from skyrl_core.registry import label_of


def _descriptions(pm: PluginManager, registered: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """kind -> name -> one-line description, for the names a plugin registered with a description."""
    found: dict[str, dict[str, str]] = {}
    for kind, names in registered.items():
        entries = {name: pm.registry(kind).entry(name).description for name in names}
        described = {name: text.strip().splitlines()[0] for name, text in entries.items() if text and text.strip()}
        if described:
            found[kind] = described
    return found


def plugin_rows(pm: PluginManager, include_builtin: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for info in pm.plugins.values():
        if info.builtin and not include_builtin:
            continue
        registered = pm.registered_by(info.name)
        rows.append({
            "distribution": info.distribution,
            "version": info.version,
            "entry_point": info.entry_point,
            "builtin": info.builtin,
            "loaded": True,
            "hooks": pm.hooks_of(info.name),
            "registered": registered,
            "descriptions": _descriptions(pm, registered),
        })
    for info, message in pm.failures:
        rows.append({
            "distribution": info.distribution,
            "version": info.version,
            "entry_point": info.entry_point,
            "builtin": False,
            "loaded": False,
            "error": message,
            "hooks": [],
            "registered": {},
        })
    return rows


def kind_rows() -> list[dict[str, Any]]:
    """One row per kind of component, from :data:`skyrl_core.hookspecs.KIND_RECORDS`."""
    return [{"kind": k.name, "hook": k.hook, "selected_by": k.selector, "sections": k.section_path("<name>"),
             "expects": k.base or "a function", "more": k.install_hint()} for k in KIND_RECORDS]


def _print_kinds(as_json: bool) -> None:
    rows = kind_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        parts = [f"hook {row['hook']}", f"selected by {row['selected_by']}" if row["selected_by"] else None,
                 f"settings at {row['sections']}", f"expects {row['expects']}",
                 f"more: {row['more']}" if row["more"] else None]
        click.echo(f"{row['kind']}: " + "; ".join(p for p in parts if p))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "include_builtin", is_flag=True, help="Include skyrl-core's built-in plugins.")
@click.option("--kinds", "list_kinds", is_flag=True,
              help="List the kinds of components instead: hook, selecting key, config section, install hint.")
def plugins(as_json: bool, include_builtin: bool, list_kinds: bool) -> None:
    """List installed plugins: distribution, version, entry point, hooks and registered names."""
    if list_kinds:
        _print_kinds(as_json)
        return
    rows = plugin_rows(get_plugin_manager(), include_builtin)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("No plugins installed (use --all to include skyrl-core's built-ins).")
        return
    table = Table(title="skyrl plugins")
    for column in ("distribution", "version", "entry point", "hooks", "registered"):
        table.add_column(column)
    for row in rows:
        registered = "\n".join(
            f"{label_of(kind)}: {', '.join(names)}" for kind, names in row["registered"].items()
        )
        if not row["loaded"]:
            registered = f"[red]failed to load[/]: {row['error']}"
        table.add_row(row["distribution"], row["version"], row["entry_point"], "\n".join(row["hooks"]), registered)
    console.print(table)
