"""The metric-sink interface, the fan-out that keeps a run alive when one sink fails, and :func:`make_loggers`.

A run logs through one :class:`MultiLogger` built by :func:`make_loggers` from ``trainer.logger``. The ``jsonl``
sink (``metrics.jsonl`` in the run folder) is always part of it, whatever ``trainer.logger`` selects.

A sink that fails to *start* (wandb not installed, not logged in) is a :class:`~skyrl_core.errors.UserError` naming
the sink and the fix, raised before training begins. A sink that fails *while logging* never stops the run: the
first error of each sink is logged (logger ``skyrl.loggers``) with its traceback, later ones are only counted.
"""

from __future__ import annotations

import abc
import logging
import math
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

from skyrl_core.config.redact import redact
from skyrl_core.errors import DiskWriteError, UserError

log = logging.getLogger("skyrl.loggers")

#: The sink that every run has, listed in ``trainer.logger`` or not.
ALWAYS_ON = "jsonl"


class Logger(abc.ABC):
    """A metric sink, registered with the ``register_loggers`` hook and selected by ``trainer.logger``.

    :param run_dir: the run folder (``trainer.output_dir``); a sink writes its files under it.
    :param project_name: ``trainer.project_name``.
    :param run_name: ``trainer.run_name``.
    :param config: the resolved config as a plain dict, secrets redacted.
    :param section: the sink's own config section (an instance of its registered ``config_cls``) or ``None``.

    Subclasses import heavy or optional libraries inside ``__init__``, never at module level, so that merely
    listing the plugins never needs them.
    """

    #: The pip requirement named in the error when the sink cannot start for lack of a module (None: none).
    requires: str | None = None
    #: What else to try when the sink fails to start for another reason (None: no specific advice).
    start_hint: str | None = None

    def __init__(
        self,
        *,
        run_dir: pathlib.Path,
        project_name: str,
        run_name: str,
        config: dict[str, Any],
        section: Any = None,
    ) -> None:
        self.run_dir = pathlib.Path(run_dir)
        self.project_name = project_name
        self.run_name = run_name
        self.config = config
        self.section = section

    @abc.abstractmethod
    def log(self, metrics: dict[str, float], step: int) -> None:
        """Record one step's scalar metrics (namespaced keys such as ``reward/mean``)."""

    def log_samples(self, samples: list[dict[str, Any]], step: int) -> None:
        """Record a few rollouts of a step (``prompt``, ``response``, ``reward``, ...). Default: ignored."""
        return None

    def finish(self) -> None:
        """Flush and close; called once at the end of the run (also after a failure). Default: nothing."""
        return None


def to_float(value: Any) -> float:
    """``value`` as a Python float: numbers, numpy scalars, one-element tensors/arrays. Non-finite values are kept.

    :raises TypeError: when ``value`` is not a single number (a string, ``None``, a multi-element array).
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"not a number: {value!r}")
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except Exception as exc:  # noqa: BLE001 - numpy and torch raise ValueError/RuntimeError for non-scalars
        raise TypeError(f"not a number: {type(value).__name__}") from exc


def to_number(value: Any) -> int | float | None:
    """``value`` as a JSON number: ints and bools stay as they are (numpy ints become ints), other numbers become
    floats, and NaN/inf become ``None`` (JSON ``null``; strict JSON has no NaN).

    :raises TypeError: as :func:`to_float`.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except Exception as exc:  # noqa: BLE001
            raise TypeError(f"not a number: {type(value).__name__}") from exc
    if isinstance(value, (bool, int)):
        return value
    number = to_float(value)
    return number if math.isfinite(number) else None


class MultiLogger:
    """Fans every call out to several sinks, in order; one sink's exception never reaches the caller, except a
    :class:`~skyrl_core.errors.DiskWriteError` (the run's own files could not be written: the run stops).

    :param sinks: name -> sink, in the order they are called.

    Usable as a context manager (``finish`` on exit). ``failures`` counts the failed calls per sink name.
    """

    def __init__(self, sinks: Mapping[str, Logger]) -> None:
        self.sinks: dict[str, Logger] = dict(sinks)
        self.failures: dict[str, int] = {}
        self._finished = False

    @property
    def names(self) -> list[str]:
        return list(self.sinks)

    def __getitem__(self, name: str) -> Logger:
        return self.sinks[name]

    def __iter__(self) -> Iterator[Logger]:
        return iter(self.sinks.values())

    def __len__(self) -> int:
        return len(self.sinks)

    def _call(self, name: str, method: str, *args: Any) -> None:
        try:
            getattr(self.sinks[name], method)(*args)
        except DiskWriteError:
            raise
        except Exception:  # noqa: BLE001 - a metric sink must never end the run
            count = self.failures[name] = self.failures.get(name, 0) + 1
            if count == 1:
                log.exception(
                    "logger '%s' failed in %s(); the run goes on (further failures of this logger are counted, "
                    "not shown)", name, method,
                )

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Send one step's metrics to every sink (each gets its own copy of the dict)."""
        for name in self.sinks:
            self._call(name, "log", dict(metrics), step)

    def log_samples(self, samples: list[dict[str, Any]], step: int) -> None:
        """Send a step's samples to every sink; the jsonl sink writes ``samples/step_<N>.jsonl``."""
        for name in self.sinks:
            self._call(name, "log_samples", list(samples), step)

    def finish(self) -> None:
        """Finish every sink once (later calls do nothing) and report sinks that failed more than once."""
        if self._finished:
            return
        self._finished = True
        for name in self.sinks:
            self._call(name, "finish")
        for name, count in self.failures.items():
            if count > 1:
                log.warning("logger '%s' failed %d times during the run", name, count)

    def __enter__(self) -> MultiLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()


def logger_names(names: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """The sinks a run uses: ``jsonl`` first, then the listed names in order, each once."""
    listed = [names] if isinstance(names, str) else list(names or [])
    selected = [ALWAYS_ON]
    for name in listed:
        if name not in selected:
            selected.append(name)
    return selected


def _lookup(registry: Any, name: str) -> type[Logger]:
    entry = getattr(registry, "entry", None)
    return entry(name).obj if entry is not None else registry[name]


def _start(name: str, cls: type[Logger], available: list[str], kwargs: dict[str, Any]) -> Logger:
    """Construct one sink; any failure becomes a UserError that names the sink and the fix."""
    others = f"choose another trainer.logger (available: {', '.join(available)})"
    try:
        return cls(**kwargs)
    except ImportError as exc:
        package = cls.requires or exc.name or "the missing module"
        raise UserError(
            f"trainer.logger '{name}' could not start: {exc}. Fix: pip install {package}, or {others}."
        ) from exc
    except Exception as exc:  # noqa: BLE001
        fix = f"{cls.start_hint}, or {others}" if cls.start_hint else others
        raise UserError(
            f"trainer.logger '{name}' could not start: {type(exc).__name__}: {exc}. Fix: {fix}."
        ) from exc


def make_loggers(
    names: str | list[str] | None,
    *,
    registry: Any,
    run_dir: pathlib.Path,
    project_name: str,
    run_name: str,
    config: dict[str, Any],
    sections: Mapping[str, Any] | None = None,
) -> MultiLogger:
    """Start the sinks of a run: ``jsonl`` always (first), then ``names`` (``trainer.logger``) in order, once each.

    :param registry: the ``loggers`` registry (``registry.entry(name)`` raises the unknown-name error; a plain
        mapping name -> class works too). Every name is checked before any sink starts.
    :param config: the resolved config as a plain dict; it is redacted again here before any sink sees it.
    :param sections: name -> config section; each sink gets ``sections.get(name)`` (``trainer.sections`` fits).
    :raises UnknownNameError: for a name no plugin registered.
    :raises UserError: when a sink fails to start (the sinks already started are finished first).
    """
    selected = logger_names(names)
    classes = {name: _lookup(registry, name) for name in selected}
    available = sorted(registry) if hasattr(registry, "__iter__") else selected
    sections = sections or {}
    plain_config = redact(dict(config or {}))
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started: dict[str, Logger] = {}
    try:
        for name, cls in classes.items():
            kwargs = dict(run_dir=run_dir, project_name=project_name, run_name=run_name, config=plain_config,
                          section=sections.get(name))
            started[name] = _start(name, cls, available, kwargs)
    except BaseException:
        MultiLogger(started).finish()
        raise
    return MultiLogger(started)
