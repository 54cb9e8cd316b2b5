"""Charts of a run's metrics: ``skyrl plot`` and the ``plots/`` folder a run writes at its end.

Each chart is one metric of ``metrics.jsonl`` against the step, one colour per run: the raw values as a faint line
with dots, and their exponential moving average (:func:`ema`) as a solid line (a series of fewer than
:data:`MIN_POINTS_TO_SMOOTH` points is drawn raw only, as a solid line). Training metrics have a value at
every step; ``eval/...`` metrics only at the evaluation steps (step 0 is the evaluation before training).
Rendering uses matplotlib's Agg canvas directly (no pyplot, no display needed).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from skyrl_core.errors import UserError

log = logging.getLogger("skyrl")

METRICS_FILE = "metrics.jsonl"
#: What a run's ``plots/metrics.png`` and ``skyrl plot`` without ``--metrics`` show, when the runs have them.
DEFAULT_METRICS = ("reward/mean", "eval/reward/mean", "response_length/mean", "entropy")
DEFAULT_SMOOTHING = 0.6
RUN_PLOT = Path("plots") / "metrics.png"
#: A series with fewer points (e.g. an eval metric of a short run) is drawn raw only: its average would lag far behind.
MIN_POINTS_TO_SMOOTH = 5


def ema(values: Sequence[float], weight: float = DEFAULT_SMOOTHING) -> list[float]:
    """Exponential moving average, as TensorBoard's smoothing slider: ``s_0 = x_0`` and
    ``s_t = weight * s_{t-1} + (1 - weight) * x_t``. ``weight = 0`` returns the values unchanged."""
    if not 0.0 <= weight < 1.0:
        raise UserError(f"--smoothing must be in [0, 1), got {weight}")
    smoothed: list[float] = []
    for value in values:
        smoothed.append(value if not smoothed else weight * smoothed[-1] + (1.0 - weight) * value)
    return smoothed


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl``; a clear error when the folder is not a run folder."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise UserError(f"no {METRICS_FILE} in '{run_dir}': pass a run folder (trainer.output_dir of a skyrl run)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number} is not valid JSON ({exc.msg})") from None
    return rows


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def series(rows: Sequence[dict], metric: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of ``metric`` over the rows that hold a finite number for it."""
    points = [(row["step"], row[metric]) for row in rows if "step" in row and _is_number(row.get(metric))]
    return [step for step, _ in points], [float(value) for _, value in points]


def available_metrics(runs: Sequence[Sequence[dict]]) -> list[str]:
    """Every metric with at least one number in one of the runs, sorted."""
    return sorted({key for rows in runs for row in rows for key, value in row.items()
                   if key != "step" and _is_number(value)})


def choose_metrics(runs: Sequence[Sequence[dict]], requested: Sequence[str] | None) -> list[str]:
    """``requested`` after checking every name exists, or the :data:`DEFAULT_METRICS` the runs have."""
    available = available_metrics(runs)
    if not requested:
        return [m for m in DEFAULT_METRICS if m in available]
    unknown = [m for m in requested if m not in available]
    if unknown:
        raise UserError(f"unknown metric(s): {', '.join(unknown)}. Available metrics:\n  " + "\n  ".join(available))
    return list(requested)


def run_labels(run_dirs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The folder names of the runs, or the paths as given when two runs share a name."""
    names = [Path(d).resolve().name for d in run_dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in run_dirs]


def plot_runs(run_dirs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
              metrics: Sequence[str] | None = None, smoothing: float = DEFAULT_SMOOTHING) -> Path:
    """Write one PNG with a chart per metric (see the module docstring) for the runs in ``run_dirs``."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = [read_metrics(d) for d in run_dirs]
    chosen = choose_metrics(runs, metrics)
    if not chosen:
        raise UserError("none of the default metrics (" + ", ".join(DEFAULT_METRICS) + ") is in the runs; "
                        "choose some with --metrics. Available: " + ", ".join(available_metrics(runs)))
    ema([], smoothing)  # checks the weight before any drawing
    columns = min(len(chosen), 2)
    rows_of_charts = math.ceil(len(chosen) / columns)
    figure = Figure(figsize=(6.0 * columns, 3.6 * rows_of_charts), layout="constrained")
    axes = figure.subplots(rows_of_charts, columns, squeeze=False).flatten()
    for index, (ax, metric) in enumerate(zip(axes, chosen)):
        for run_index, (label, rows) in enumerate(zip(run_labels(run_dirs), runs)):
            steps, values = series(rows, metric)
            if not steps:
                continue
            colour = f"C{run_index % 10}"
            smooth = smoothing > 0 and len(values) >= MIN_POINTS_TO_SMOOTH
            ax.plot(steps, values, color=colour, alpha=0.3 if smooth else 1.0, linewidth=1, marker="o",
                    markersize=3, label=None if smooth else label)
            if smooth:
                ax.plot(steps, ema(values, smoothing), color=colour, linewidth=2, label=label)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if index == 0:
            ax.legend(fontsize="small")
    for ax in axes[len(chosen):]:
        ax.set_visible(False)
    figure.suptitle(f"faint: raw values; solid: moving average (weight {smoothing})", fontsize="small")
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    return output


def write_run_plots(run_dir: str | os.PathLike[str]) -> Path | None:
    """At the end of a run: ``run_dir/plots/metrics.png`` of the default metrics (``trainer.write_plots``).
    Logs where it is; returns ``None`` (and logs why) when the run logged none of them."""
    runs = [read_metrics(run_dir)]
    if not choose_metrics(runs, None):
        log.info("no plot written: the run logged none of %s", ", ".join(DEFAULT_METRICS))
        return None
    path = plot_runs([run_dir], Path(run_dir) / RUN_PLOT)
    log.info("plot: %s", path)
    return path
