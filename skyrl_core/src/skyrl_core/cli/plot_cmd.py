"""``skyrl plot``: PNG charts of metrics against steps for one or more run folders."""

from __future__ import annotations

from pathlib import Path

import click

from skyrl_core.cli.common import console
from skyrl_core.plotting import DEFAULT_METRICS, DEFAULT_SMOOTHING, RUN_PLOT

COMPARISON_PLOT = "skyrl_plot.png"


@click.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR [RUN_DIR ...]")
@click.option("--metrics", metavar="NAME,NAME,...",
              help=f"Comma-separated metric names of metrics.jsonl (default: those of {', '.join(DEFAULT_METRICS)} "
                   "the runs have). An unknown name lists the available ones.")
@click.option("--output", "-o", metavar="FILE.png",
              help=f"Where to write the PNG (default: RUN_DIR/{RUN_PLOT.as_posix()} for one run, ./{COMPARISON_PLOT} "
                   "for several).")
@click.option("--smoothing", type=float, default=DEFAULT_SMOOTHING, show_default=True,
              help="Weight of the moving average drawn over the raw values, in [0, 1) (0: none).")
def plot(run_dirs: tuple[str, ...], metrics: str | None, output: str | None, smoothing: float) -> None:
    """Chart metrics of RUN_DIR/metrics.jsonl against steps: train and eval, several runs side by side, each as
    raw values and their moving average."""
    from skyrl_core.plotting import plot_runs

    names = [name.strip() for name in metrics.split(",") if name.strip()] if metrics else None
    default = Path(run_dirs[0]) / RUN_PLOT if len(run_dirs) == 1 else Path(COMPARISON_PLOT)
    path = plot_runs(run_dirs, output or default, metrics=names, smoothing=smoothing)
    console.print(f"wrote {path}", highlight=False)
