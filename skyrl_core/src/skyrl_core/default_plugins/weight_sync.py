"""Built-in plugin: the ``gloo``, ``nccl`` and ``ray`` weight-sync transports."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register


@hookimpl
def register_weight_sync_backends(register: Register) -> None:
    from skyrl_core.weight_sync.collective import BroadcastConfig, GlooWeightSync, NcclWeightSync
    from skyrl_core.weight_sync.object_store import RayObjectStoreWeightSync

    register("gloo", GlooWeightSync, config_cls=BroadcastConfig,
             description="broadcast over a gloo process group (CPU)")
    register("nccl", NcclWeightSync, config_cls=BroadcastConfig,
             description="broadcast over an NCCL process group (GPU)")
    register("ray", RayObjectStoreWeightSync, description="through Ray's object store")
