"""Built-in plugin: the ``gloo``, ``nccl`` and ``ray`` weight-sync transports (imported on first use)."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register
from skyrl_core.weight_sync.config import BroadcastConfig


@hookimpl
def register_weight_sync_backends(register: Register) -> None:
    register("gloo", "skyrl_core.weight_sync.collective:GlooTransport", config_cls=BroadcastConfig,
             description="broadcast over a gloo process group (CPU)")
    register("nccl", "skyrl_core.weight_sync.collective:NcclTransport", config_cls=BroadcastConfig,
             description="broadcast over an NCCL process group (GPUs; engines on other GPUs than the policy)")
    register("ray", "skyrl_core.weight_sync.object_store:RayObjectStoreTransport", config_cls=BroadcastConfig,
             description="through Ray's object store (across nodes, or sharing one GPU)")
