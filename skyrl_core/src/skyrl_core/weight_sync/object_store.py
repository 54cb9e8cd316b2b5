"""``ray``: weights travel through Ray's object store (works across nodes without a shared process group)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from skyrl_core.weight_sync.base import WeightSpec, WeightSyncBackend, ordered_for_send


class RayObjectStoreWeightSync(WeightSyncBackend):
    """Policy rank 0 puts one CPU copy of the weights in the object store; each engine reads it."""

    two_phase = True

    def init_sender(self, *, master_addr: str, master_port: int, num_receivers: int) -> None:
        """Nothing to set up: the object store is always there."""

    def init_receiver(self, *, master_addr: str, master_port: int, rank: int, num_receivers: int) -> None:
        """Nothing to set up."""

    def send(self, tensors: dict[str, torch.Tensor], specs: list[WeightSpec]) -> Any:
        import ray

        return [ray.put([t.cpu() for t in ordered_for_send(tensors, specs)])]

    def receive(self, specs: list[WeightSpec], payload: Any = None) -> Iterator[tuple[str, torch.Tensor]]:
        import ray

        (ref,) = payload
        tensors = ray.get(ref)
        for (name, _shape, _dtype), tensor in zip(specs, tensors, strict=True):
            yield name, tensor
