"""Built-in plugin: the ``ddp`` training strategy."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register


@hookimpl
def register_strategies(register: Register) -> None:
    from skyrl_core.strategy.ddp import DDPStrategy

    register("ddp", DDPStrategy, description="PyTorch DistributedDataParallel, 1..N processes, CPU or GPU")
