"""The ``skyrl`` command: a click group whose user errors exit 2 with one clear message (``--debug``: traceback)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
import warnings

import click

from skyrl_core.cli.common import console_err
from skyrl_core.errors import SkyrlError, UserError
from skyrl_core.ray_utils import verbose


def _version_text() -> str:
    from skyrl_core import __version__
    from skyrl_core.plugins import get_plugin_manager

    lines = [f"skyrl-core {__version__}"]
    pm = get_plugin_manager()
    external = [info for info in pm.plugins.values() if not info.builtin]
    if external:
        lines.append("registered plugins:")
        lines += [f"  {info.distribution} {info.version} ({info.entry_point})" for info in external]
    lines += [f"  {info.distribution} {info.version} FAILED to load ({info.entry_point})" for info, _ in pm.failures]
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show skyrl-core's and every plugin's version.")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def cli(debug: bool) -> None:
    """skyrl: reinforcement learning for LLMs on Ray."""
    if debug:
        os.environ["SKYRL_DEBUG"] = "1"


def _register_commands() -> None:
    from skyrl_core.cli import (
        checkpoint_cmds,
        config_cmd,
        data_cmd,
        model_cmd,
        new_cmd,
        plot_cmd,
        plugins_cmd,
        run_cmd,
    )

    cli.add_command(plugins_cmd.plugins)
    cli.add_command(config_cmd.config)
    cli.add_command(run_cmd.run)
    cli.add_command(model_cmd.model)
    cli.add_command(data_cmd.data)
    cli.add_command(new_cmd.new)
    cli.add_command(checkpoint_cmds.eval_command)
    cli.add_command(checkpoint_cmds.export_command)
    cli.add_command(plot_cmd.plot)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings API
    from skyrl_core.plugins import PluginLoadWarning

    if issubclass(category, PluginLoadWarning):
        console_err.print(f"[yellow]warning:[/] {message}", highlight=False)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def _configure_logging(debug: bool) -> None:
    """skyrl's own log lines (data source, dropped prompts, env failures) on stderr through rich."""
    from rich.logging import RichHandler

    logger = logging.getLogger("skyrl")
    if not logger.handlers:
        logger.addHandler(RichHandler(console=console_err, show_path=False, show_time=False, markup=False))
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False


def _quiet_libraries() -> None:
    """No library noise on the driver's console unless ``--verbose``: no transformers/hub progress bars ("Loading
    weights", "Writing model shards"), and DeepSpeed (imported by transformers whenever it is installed) told the
    accelerator it would pick anyway on a machine without an NVIDIA driver, instead of warning that it guessed."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not os.path.exists("/proc/driver/nvidia"):
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``skyrl`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SKYRL_DEBUG") == "1"
    if "--verbose" not in argv and not verbose():
        _quiet_libraries()
    warnings.showwarning = _show_warning
    _configure_logging(debug)
    _register_commands()
    try:
        code = cli.main(args=argv, prog_name="skyrl", standalone_mode=False)
    except SkyrlError as exc:  # user errors (2), runs stopped by a signal (130/143), failed workers (1)
        if debug:
            traceback.print_exc()
        label = "error" if isinstance(exc, UserError) or exc.exit_code == 1 else "stopped"
        console_err.print(f"[bold red]{label}:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        _exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.Abort:
        console_err.print("aborted")
        sys.exit(130)
    _exit(code if isinstance(code, int) else 0)


def _exit(code: int) -> None:
    """Exit, without waiting for env calls that hang past ``environment.step_timeout_s`` (Python would join their
    threads forever); everything a run wrote is already flushed to disk."""
    hung = [t for t in threading.enumerate() if t.name.startswith("skyrl-env") and t.is_alive()]
    if not hung:
        sys.exit(code)
    console_err.print(f"[yellow]warning:[/] {len(hung)} env call(s) are still running past their time limit; "
                      "exiting without waiting for them", highlight=False)
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
