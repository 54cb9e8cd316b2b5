"""Built-in plugin: the ``gloo``, ``nccl`` and ``ray`` weight-sync transports (imported on first use)."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register
from skyrl_core.weight_sync.config import BroadcastConfig


@hookimpl
def register_weight_sync_backends(register: Register) -> None:
    register("gloo", "skyrl_core.weight_sync.collective:GlooWeightSync", config_cls=BroadcastConfig,
             description="broadcast over a gloo process group (CPU)")
    register("nccl", "skyrl_core.weight_sync.collective:NcclWeightSync", config_cls=BroadcastConfig,
             description="broadcast over an NCCL process group (GPU)")
    register("ray", "skyrl_core.weight_sync.object_store:RayObjectStoreWeightSync",
             description="through Ray's object store")
