"""Built-in plugin: the ``ddp`` training strategy (imported on first use)."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register


@hookimpl
def register_strategies(register: Register) -> None:
    register("ddp", "skyrl_core.strategy.ddp:DDPStrategy",
             description="PyTorch DistributedDataParallel, 1..N processes, CPU or GPU")
