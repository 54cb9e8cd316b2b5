"""``gloo`` (CPU) and ``nccl`` (GPU): broadcast from policy rank 0 over a process group made for weight sync.

The group is independent of the trainer's own process group (its own TCP store and port), so engines never join
the training group and the trainer's collectives are unaffected.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from skyrl_core.weight_sync.base import WeightSpec, WeightSyncBackend, dtype_of, ordered_for_send

_TIMEOUT = datetime.timedelta(minutes=10)


class _BroadcastWeightSync(WeightSyncBackend):
    device_type = "cpu"

    def __init__(self, *, section: Any = None):
        super().__init__(section=section)
        self._group: Any = None
        self._store: Any = None

    def _make_group(self, store: Any, rank: int, world_size: int) -> Any:
        raise NotImplementedError

    def _connect(self, master_addr: str, master_port: int, rank: int, world_size: int) -> None:
        self._store = dist.TCPStore(master_addr, master_port, world_size, rank == 0, timeout=_TIMEOUT)
        self._group = self._make_group(self._store, rank, world_size)

    def init_sender(self, *, master_addr: str, master_port: int, num_receivers: int) -> None:
        self._connect(master_addr, master_port, 0, num_receivers + 1)

    def init_receiver(self, *, master_addr: str, master_port: int, rank: int, num_receivers: int) -> None:
        self._connect(master_addr, master_port, rank, num_receivers + 1)

    def _broadcast(self, tensor: torch.Tensor) -> None:
        options = dist.BroadcastOptions()
        options.rootRank = 0
        self._group.broadcast([tensor], options).wait()

    def _device(self) -> torch.device:
        if self.device_type == "cuda":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def send(self, tensors: dict[str, torch.Tensor], specs: list[WeightSpec]) -> None:
        for tensor in ordered_for_send(tensors, specs):
            self._broadcast(tensor.to(self._device()))

    def receive(self, specs: list[WeightSpec], payload: Any = None) -> Iterator[tuple[str, torch.Tensor]]:
        for name, shape, dtype in specs:
            buffer = torch.empty(shape, dtype=dtype_of(dtype), device=self._device())
            self._broadcast(buffer)
            yield name, buffer

    def close(self) -> None:
        self._group, self._store = None, None


class GlooWeightSync(_BroadcastWeightSync):
    """Broadcast over gloo; tensors travel through CPU memory (the default without GPUs)."""

    def _make_group(self, store: Any, rank: int, world_size: int) -> Any:
        return dist.ProcessGroupGloo(store, rank, world_size, _TIMEOUT)


class NcclWeightSync(_BroadcastWeightSync):
    """Broadcast over NCCL between GPUs (the default with GPUs, engines not colocated or colocated)."""

    device_type = "cuda"

    def _make_group(self, store: Any, rank: int, world_size: int) -> Any:
        options = dist.ProcessGroupNCCL.Options()
        return dist.ProcessGroupNCCL(store, rank, world_size, options)
