"""The ``trainer.fsdp2`` section (``trainer.fsdp`` when the run selects the alias)."""

from __future__ import annotations

import attrs

from skyrl_core.trainer.memory_fit import Sharding


def _shard_size(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if value == 0 or value < -1:
        raise ValueError(f"{attribute.name} must be -1 (all ranks) or a positive number of ranks, got {value}")


@attrs.define(kw_only=True)
class FSDPConfig:
    cpu_offload: bool = attrs.field(
        default=False,
        metadata={"help": "Keep sharded parameters, gradients and optimizer state in CPU memory; the optimizer "
                          "step runs on CPU (GPU runs; nothing to gain on a CPU-only machine)."})
    reshard_after_forward: bool = attrs.field(
        default=True,
        metadata={"help": "Free each layer's gathered parameters after its forward and gather again in backward "
                          "(less memory, one more all-gather per layer)."})
    fsdp_size: int = attrs.field(
        default=-1, validator=_shard_size,
        metadata={"help": "Ranks that shard one copy of the model (-1: all ranks). Smaller values replicate the "
                          "model world_size / fsdp_size times (hybrid sharding); it must divide the world size."})

    def memory_sharding(self, world_size: int, bf16: bool) -> Sharding:
        """fp32 weights, gradients and AdamW state (bf16 is compute only), all split over ``fsdp_size`` ranks (all
        ranks when -1), all in CPU memory with ``cpu_offload``."""
        shards = world_size if self.fsdp_size == -1 else self.fsdp_size
        return Sharding(params_shards=shards, grads_shards=shards, optimizer_shards=shards,
                        offloaded=frozenset({"params", "grads", "optimizer"}) if self.cpu_offload else frozenset())
