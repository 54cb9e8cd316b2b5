"""The built-in sinks: ``jsonl`` (always on), ``console``, ``wandb`` and ``tensorboard``; and :func:`write_samples`.

Value conventions, the same in every file skyrl writes:

- numbers are written as JSON numbers; numpy and torch scalars are converted (``.item()`` / ``float()``);
- NaN and +/-inf are written as ``null`` (strict JSON has no NaN; readers such as pandas read it back as NaN);
- in ``metrics.jsonl`` a value that is not a single number is written as is when it is a string and otherwise
  left out (with one warning per key).

wandb and tensorboard are optional: they are imported when their sink is constructed, never before.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any

from skyrl_core.errors import DiskWriteError
from skyrl_core.loggers.base import Logger, log, to_float, to_number

METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"


# -- samples ---------------------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: containers recursively, arrays/tensors as lists, NaN/inf as None, the
    rest as ``str``."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return plain(value.tolist())
    return str(value)


def write_samples(run_dir: str | os.PathLike[str], step: int, samples: list[dict[str, Any]]) -> pathlib.Path:
    """Write ``run_dir/samples/step_<step>.jsonl``: one JSON object per sample (``prompt``, ``response``,
    ``reward``, ``env_class``, ``stop_reason``, ... as given), replacing the file atomically. Returns its path."""
    folder = pathlib.Path(run_dir) / SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{int(step)}.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for sample in samples:
                f.write(json.dumps(plain(sample), ensure_ascii=False, allow_nan=False) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    return path


def _write_error(path: pathlib.Path, exc: OSError) -> DiskWriteError:
    return DiskWriteError(f"cannot write {path} ({exc.strerror or exc}); every row written before is complete. Free "
                          "disk space there, or set trainer.output_dir to another disk")


# -- jsonl ------------------------------------------------------------------------------------------------------


class JsonlLogger(Logger):
    """Appends ``{"step": N, ...metrics}`` to ``run_dir/metrics.jsonl``, one line per call, written and fsynced
    so that a crash loses nothing already logged. Always part of a run. Its ``log_samples`` writes
    ``samples/step_<N>.jsonl`` (see :func:`write_samples`). NaN/inf are written as ``null``.

    A line that cannot be written whole (a full disk) is cut off again, so the file only ever holds complete
    lines, and the run stops with a :class:`~skyrl_core.errors.DiskWriteError` naming the file."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # -1 once finished
        self._warned: set[str] = set()

    def record(self, metrics: dict[str, Any], step: int) -> dict[str, Any]:
        """The JSON object written for one step."""
        row: dict[str, Any] = {"step": int(step)}
        for key, value in metrics.items():
            key = str(key)
            if key == "step":
                continue
            try:
                row[key] = to_number(value)
            except TypeError:
                if isinstance(value, str):
                    row[key] = value
                elif key not in self._warned:
                    self._warned.add(key)
                    log.warning("metric '%s' is not a single number (%s); it is left out of %s",
                                key, type(value).__name__, METRICS_FILE)
        return row

    def log(self, metrics: dict[str, Any], step: int) -> None:
        data = (json.dumps(self.record(metrics, step), allow_nan=False) + "\n").encode()
        start = os.fstat(self._fd).st_size
        try:
            while data:
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
        except OSError as exc:
            os.ftruncate(self._fd, start)  # frees space: works on a full disk
            raise _write_error(self.path, exc) from None

    def log_samples(self, samples: list[dict[str, Any]], step: int) -> None:
        write_samples(self.run_dir, step, samples)

    def finish(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# -- console ----------------------------------------------------------------------------------------------------

#: (metric key, label, format) shown on the console line of a training step, in order; other keys are omitted.
CONSOLE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("reward/mean", "reward", "{}"),
    ("loss/policy", "loss", "{}"),
    ("timing/step", "time", "{}s"),
    ("throughput/tokens_per_s", "tok/s", "{}"),
)
EVAL_PREFIX = "eval/"


def format_number(value: Any) -> str:
    """Compact: 4 significant digits, thousands separators from 1000 up, ``nan``/``inf`` as such."""
    try:
        number = to_float(value)
    except TypeError:
        return str(value)
    if not math.isfinite(number):
        return str(number)
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}"


class ConsoleLogger(Logger):
    """One compact line per step on the terminal (rich): step, ``reward/mean``, ``loss/policy``, ``timing/step``
    and ``throughput/tokens_per_s`` when present; plus one line of every ``eval/`` key on eval steps.

    :param console: a :class:`rich.console.Console` to print to (default: a new one on stdout).
    """

    def __init__(self, *, console: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if console is None:
            from rich.console import Console

            console = Console(highlight=False)
        self.console = console

    def lines(self, metrics: dict[str, Any], step: int) -> list[str]:
        """The lines printed for one step (plain text)."""
        train = [f"{label} {fmt.format(format_number(metrics[key]))}"
                 for key, label, fmt in CONSOLE_FIELDS if key in metrics]
        evals = [f"{key[len(EVAL_PREFIX):]} {format_number(value)}"
                 for key, value in metrics.items() if key.startswith(EVAL_PREFIX)]
        out = []
        if train or not evals:
            out.append(" │ ".join([f"step {step}", *train]))
        if evals:
            out.append(" │ ".join([f"eval step {step}", *evals]))
        return out

    def log(self, metrics: dict[str, Any], step: int) -> None:
        from rich.text import Text

        for line in self.lines(metrics, step):
            style = "cyan" if line.startswith("eval") else None
            self.console.print(Text(line, style=style or ""))


# -- wandb ------------------------------------------------------------------------------------------------------


class WandbLogger(Logger):
    """Weights & Biases: ``wandb.init(project=trainer.project_name, name=trainer.run_name, config=<redacted
    config>, dir=run_dir)``. ``WANDB_MODE`` (``online``, ``offline``, ``disabled``) is honoured; unset means
    wandb's default. Samples are logged as a ``wandb.Table`` under ``samples``."""

    requires = "wandb"
    start_hint = "run `wandb login` (or set WANDB_API_KEY), or set WANDB_MODE=offline"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import wandb

        self._wandb = wandb
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.project_name,
            name=self.run_name,
            config=self.config,
            dir=str(self.run_dir),
            mode=os.environ.get("WANDB_MODE") or None,
        )
        self._table_failed = False

    def log(self, metrics: dict[str, Any], step: int) -> None:
        data = {}
        for key, value in metrics.items():
            try:
                data[key] = to_float(value) if not isinstance(value, (bool, int)) else value
            except TypeError:
                if isinstance(value, str):
                    data[key] = value
        self.run.log(data, step=step)

    def log_samples(self, samples: list[dict[str, Any]], step: int) -> None:
        if not samples:
            return
        columns: list[str] = []
        for sample in samples:
            columns += [str(k) for k in sample if str(k) not in columns]
        rows = [[_cell(sample.get(c)) for c in columns] for sample in samples]
        try:
            table = self._wandb.Table(columns=columns, data=rows, allow_mixed_types=True)
        except Exception:  # noqa: BLE001 - samples are a nicety; metrics must keep flowing
            if not self._table_failed:
                self._table_failed = True
                log.warning("wandb: could not build the samples table; samples are not sent to wandb",
                            exc_info=True)
            return
        self.run.log({"samples": table}, step=step)

    def finish(self) -> None:
        self.run.finish()


def _cell(value: Any) -> Any:
    """A wandb table cell: scalars as they are, anything else as JSON text."""
    value = plain(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False)


# -- tensorboard ------------------------------------------------------------------------------------------------


class TensorboardLogger(Logger):
    """TensorBoard event files in ``run_dir/tensorboard`` (``torch.utils.tensorboard.SummaryWriter``): one
    scalar per metric (NaN/inf kept), samples as text, flushed after every step."""

    requires = "tensorboard"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = self.run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log(self, metrics: dict[str, Any], step: int) -> None:
        for key, value in metrics.items():
            try:
                number = to_float(value)
            except TypeError:
                continue
            self.writer.add_scalar(key, number, global_step=step)
        self.writer.flush()

    def log_samples(self, samples: list[dict[str, Any]], step: int) -> None:
        blocks = ["```\n" + json.dumps(plain(s), ensure_ascii=False, indent=2) + "\n```" for s in samples]
        if blocks:
            self.writer.add_text("samples", "\n\n".join(blocks), global_step=step)
            self.writer.flush()

    def finish(self) -> None:
        self.writer.close()
