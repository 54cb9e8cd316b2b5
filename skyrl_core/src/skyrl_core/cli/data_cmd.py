"""``skyrl data NAME --output-dir DIR [options]``: run a registered dataset builder.

The builder's options are the fields of its registered attrs config class (``num_digits`` -> ``--num-digits``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import click

from skyrl_core.cli.common import console
from skyrl_core.config.converter import converter, format_errors
from skyrl_core.errors import ConfigError
from skyrl_core.plugins import get_plugin_manager


class DataGroup(click.Group):
    """One subcommand per registered dataset builder, built on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(get_plugin_manager().registry("datasets"))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        registry = get_plugin_manager().registry("datasets")
        if name not in registry:
            raise registry.unknown(name)
        return _builder_command(name)


def _builder_command(name: str) -> click.Command:
    entry = get_plugin_manager().registry("datasets").entry(name)
    params: list[click.Parameter] = [
        click.Option(["--output-dir"], required=True, type=click.Path(file_okay=False), help="Folder to write to.")
    ]
    fields = attrs.fields(attrs.resolve_types(entry.config_cls)) if entry.config_cls else ()
    for field in fields:
        params.append(click.Option(
            [f"--{field.name.replace('_', '-')}", field.name],
            default=None,
            help=f"{field.metadata.get('help', '')} [default: {field.default!r}]".strip(),
        ))

    def callback(output_dir: str, **options: Any) -> None:
        values = {k: v for k, v in options.items() if v is not None}
        config = None
        if entry.config_cls is not None:
            try:
                config = converter.structure(values, entry.config_cls)
            except Exception as exc:  # noqa: BLE001 - cattrs exception groups
                raise ConfigError(format_errors(exc), source=f"options of 'skyrl data {name}'") from None
        files = entry.obj.build(Path(output_dir), config)
        console.print(f"wrote {files.train} and {files.validation}", highlight=False)

    return click.Command(name, params=params, callback=callback, help=entry.description or f"Build the {name} dataset.")


@click.group(cls=DataGroup)
def data() -> None:
    """Build a registered dataset: skyrl data NAME --output-dir DIR [options]."""
