"""Built-in plugin: the metric sinks ``console``, ``jsonl``, ``wandb`` and ``tensorboard``.

The classes are light to import; wandb and tensorboard are imported only when their sink is constructed.
"""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register


@hookimpl
def register_loggers(register: Register) -> None:
    from skyrl_core.loggers.builtin import ConsoleLogger, JsonlLogger, TensorboardLogger, WandbLogger

    register("console", ConsoleLogger, description="one line per step on the terminal")
    register("jsonl", JsonlLogger, description="metrics.jsonl and samples/ in the run folder (always on)")
    register("wandb", WandbLogger, description="Weights & Biases (pip install wandb; honours WANDB_MODE)")
    register("tensorboard", TensorboardLogger, description="TensorBoard event files in <run folder>/tensorboard")
