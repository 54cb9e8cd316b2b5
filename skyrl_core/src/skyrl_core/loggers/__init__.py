"""Metric sinks, selected by ``trainer.logger`` (a name or a list); ``metrics.jsonl`` is always written.

Plugin authors implement :class:`Logger` and register it with the ``register_loggers`` hook::

    from skyrl_core import hookimpl
    from skyrl_core.loggers import Logger

    class MlflowLogger(Logger):
        requires = "mlflow"                      # named in the error when it cannot be imported

        def __init__(self, **kwargs):
            super().__init__(**kwargs)           # run_dir, project_name, run_name, config, section
            import mlflow
            ...

        def log(self, metrics, step): ...

    @hookimpl
    def register_loggers(register):
        register("mlflow", MlflowLogger)

The trainer builds one :class:`MultiLogger` with :func:`make_loggers` and calls ``log(metrics, step)`` every step,
``log_samples(samples, step)`` with a few rollouts, and ``finish()`` at the end.
"""

from __future__ import annotations

from skyrl_core.loggers.base import ALWAYS_ON, Logger, MultiLogger, logger_names, make_loggers, to_float, to_number
from skyrl_core.loggers.builtin import (
    METRICS_FILE,
    SAMPLES_DIR,
    ConsoleLogger,
    JsonlLogger,
    TensorboardLogger,
    WandbLogger,
    write_samples,
)

__all__ = [
    "ALWAYS_ON",
    "METRICS_FILE",
    "SAMPLES_DIR",
    "ConsoleLogger",
    "JsonlLogger",
    "Logger",
    "MultiLogger",
    "TensorboardLogger",
    "WandbLogger",
    "logger_names",
    "make_loggers",
    "to_float",
    "to_number",
    "write_samples",
]
