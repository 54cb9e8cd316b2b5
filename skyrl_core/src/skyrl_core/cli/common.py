"""Options shared by ``skyrl run`` and ``skyrl config show``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from skyrl_core.config.loader import RunArgs, resolve_config
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.plugins import PLUGIN_FILES_ENV, PLUGIN_SOURCES_ENV, get_plugin_manager

console = Console()
console_err = Console(stderr=True)


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--env, --algo, --config, --plugin and the key=value overrides."""
    fn = click.argument("overrides", nargs=-1)(fn)
    fn = click.option("--plugin", "plugin_files", multiple=True, metavar="FILE.py",
                      help="Register a plain Python file as a plugin (repeatable).")(fn)
    fn = click.option("--config", "-c", "config_file", metavar="FILE", help="A YAML run config.")(fn)
    fn = click.option("--algo", help="Algorithm preset (grpo, gae, rloo, reinforce++, ...).")(fn)
    fn = click.option("--env", help="Environment (sets environment.env_class and the default dataset).")(fn)
    return fn


def verbose_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--verbose: the workers' own output (library logs, progress bars) live on the console; it always goes to
    ``<run folder>/logs/``. Sets ``SKYRL_VERBOSE=1`` before Ray starts."""

    def enable(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            os.environ["SKYRL_VERBOSE"] = "1"
        return value

    return click.option("--verbose", is_flag=True, expose_value=False, callback=enable,
                        help="Show the workers' output live (it always goes to <run folder>/logs/).")(fn)


def load_run_config(
    env: str | None, algo: str | None, config_file: str | None, plugin_files: tuple[str, ...],
    overrides: tuple[str, ...],
) -> SkyRLConfig:
    """Register --plugin files (and pass them on to Ray workers), then resolve the config."""
    pm = get_plugin_manager()
    known = [p for p in os.environ.get(PLUGIN_FILES_ENV, "").split(os.pathsep) if p]
    for path in plugin_files:
        module = pm.load_file(path)
        if module.__file__ not in known:
            known.append(module.__file__)
    if known:
        os.environ[PLUGIN_FILES_ENV] = os.pathsep.join(known)
        os.environ[PLUGIN_SOURCES_ENV] = json.dumps({path: Path(path).read_text() for path in known})
    return resolve_config(RunArgs(env=env, algo=algo, config_file=config_file, overrides=tuple(overrides)), pm)

