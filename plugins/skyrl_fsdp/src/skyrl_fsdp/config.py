"""The ``trainer.fsdp2`` section (``trainer.fsdp`` when the run selects the alias)."""

from __future__ import annotations

import attrs


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
