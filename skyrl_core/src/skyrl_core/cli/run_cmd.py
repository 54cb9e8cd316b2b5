"""``skyrl run``: validate the arguments, then train."""

from __future__ import annotations

import click

from skyrl_core.cli.common import load_run_config, run_options, verbose_option


@click.command(context_settings={"ignore_unknown_options": False})
@run_options
@verbose_option
def run(env, algo, config_file, plugin_files, overrides) -> None:  # noqa: ANN001 - click passes them
    """Train: skyrl run --env NAME --algo NAME [--config FILE] [--plugin FILE.py] [key=value ...]."""
    config = load_run_config(env, algo, config_file, plugin_files, overrides)
    from skyrl_core.trainer.launch import launch

    launch(config)
