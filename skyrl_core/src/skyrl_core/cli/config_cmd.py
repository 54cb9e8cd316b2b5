"""``skyrl config show``: the resolved config as YAML."""

from __future__ import annotations

import click
import yaml

from skyrl_core.cli.common import load_run_config, run_options
from skyrl_core.config.loader import config_to_dict


@click.group()
def config() -> None:
    """Inspect run configurations."""


@config.command("show")
@run_options
def show(env, algo, config_file, plugin_files, overrides) -> None:  # noqa: ANN001 - click passes them
    """Print the resolved config (the same arguments as `skyrl run`) as YAML; secrets are redacted."""
    resolved = load_run_config(env, algo, config_file, plugin_files, overrides)
    click.echo(yaml.safe_dump(config_to_dict(resolved), sort_keys=False), nl=False)
