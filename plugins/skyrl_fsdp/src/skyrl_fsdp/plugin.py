"""skyrl hook implementations of ``skyrl-fsdp`` (entry point ``skyrl: fsdp``).

Only cheap imports here: the strategy class (torch, transformers) is registered as a ``"module:Class"`` string and
imported the first time a run selects it.
"""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_fsdp.config import FSDPConfig

STRATEGY = "skyrl_fsdp.strategy:FSDP2Strategy"


@hookimpl
def register_strategies(register):
    register("fsdp2", STRATEGY, config_cls=FSDPConfig,
             description="PyTorch FSDP2 (fully_shard per decoder layer), 1..N processes, CPU or GPU")
    register("fsdp", STRATEGY, config_cls=FSDPConfig, description="alias of fsdp2 (its keys under trainer.fsdp)")
