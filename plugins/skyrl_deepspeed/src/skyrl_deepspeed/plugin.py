"""skyrl hook implementations of ``skyrl-deepspeed`` (entry point ``skyrl: deepspeed``).

Only cheap imports here: the strategy class (torch, deepspeed) is registered as a ``"module:Class"`` string and
imported the first time a run selects it.
"""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_deepspeed.config import DeepSpeedConfig


@hookimpl
def register_strategies(register):
    register("deepspeed", "skyrl_deepspeed.strategy:DeepSpeedStrategy", config_cls=DeepSpeedConfig,
             description="DeepSpeed ZeRO stage 1, 2 or 3, 1..N processes, CPU (gloo) or GPU")
