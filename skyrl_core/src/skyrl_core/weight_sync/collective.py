"""``gloo`` (CPU) and ``nccl`` (GPU): broadcast from policy rank 0 over a process group made for weight sync.

The group is independent of the trainer's own process group (its own TCP store and port), so engines never join
the training group and the trainer's collectives are unaffected. Each chunk travels as flat buffers, one broadcast
per run of same-dtype tensors; the receivers size their buffers from the sender's description of the chunk
(:class:`~skyrl_core.weight_sync.base.WeightUpdateRequest`), so the sender never needs the engine's names.

NCCL refuses two ranks on one device, so ``nccl`` declares ``same_device_ok = False`` and ``auto`` picks another
transport when engines share the policy's GPUs.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from skyrl_core.weight_sync.base import (
    WeightChunk,
    WeightReceiver,
    WeightSender,
    WeightTransport,
    WeightUpdateRequest,
    dtype_of,
)

_TIMEOUT = datetime.timedelta(minutes=10)


def dtype_runs(dtypes: list[str]) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of consecutive equal dtypes (one flat buffer per range)."""
    runs: list[tuple[int, int]] = []
    for i, dtype in enumerate(dtypes):
        if runs and dtypes[runs[-1][0]] == dtype:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


class _Group:
    """A process group of its own (rank 0 = the sender) and the device its buffers live on."""

    backend = "gloo"

    def __init__(self, info: Any, rank: int):
        store = dist.TCPStore(info.master_addr, info.master_port, info.world_size, rank == 0, timeout=_TIMEOUT)
        if self.backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
            self.group = dist.ProcessGroupNCCL(store, rank, info.world_size, dist.ProcessGroupNCCL.Options())
        else:
            self.device = torch.device("cpu")
            self.group = dist.ProcessGroupGloo(store, rank, info.world_size, _TIMEOUT)
        self._store = store  # the group needs its store alive

    def broadcast(self, tensor: torch.Tensor) -> None:
        options = dist.BroadcastOptions()
        options.rootRank = 0
        self.group.broadcast([tensor], options).wait()


class _NcclGroup(_Group):
    backend = "nccl"


class BroadcastSender(WeightSender):
    """Rank 0 of the sync group: flattens each dtype run of a chunk into one buffer and broadcasts it."""

    group_cls: type[_Group] = _Group

    def connect(self) -> None:
        self._group = self.group_cls(self.init_info, 0)

    def send(self, chunk: WeightChunk) -> None:
        for start, end in dtype_runs(chunk.dtypes):
            parts = chunk.tensors[start:end]
            flat = parts[0].reshape(-1) if len(parts) == 1 else torch.cat([t.reshape(-1) for t in parts])
            self._group.broadcast(flat.to(self._group.device))
            del flat

    def close(self) -> None:
        self._group = None  # type: ignore[assignment]


class BroadcastReceiver(WeightReceiver):
    """One receiving rank: a buffer per dtype run, split into views of the sender's shapes."""

    group_cls: type[_Group] = _Group

    def connect(self) -> None:
        self._group = self.group_cls(self.init_info, self.rank)

    def receive(self, request: WeightUpdateRequest, device: torch.device) -> Iterator[tuple[str, torch.Tensor]]:
        numels = request.numels
        for start, end in dtype_runs(request.dtypes):
            flat = torch.empty(sum(numels[start:end]), dtype=dtype_of(request.dtypes[start]),
                               device=self._group.device)
            self._group.broadcast(flat)
            flat = flat.to(device)
            for i, part in zip(range(start, end), flat.split(numels[start:end]), strict=True):
                yield request.names[i], part.view(request.shapes[i])

    def close(self) -> None:
        self._group = None  # type: ignore[assignment]


class _NcclSender(BroadcastSender):
    group_cls = _NcclGroup


class _NcclReceiver(BroadcastReceiver):
    group_cls = _NcclGroup


class GlooTransport(WeightTransport):
    """Broadcast over gloo; tensors travel through CPU memory (the default without GPUs)."""

    sender_cls = BroadcastSender
    receiver_cls = BroadcastReceiver
    device_types = ("cpu",)


class NcclTransport(WeightTransport):
    """Broadcast over NCCL between GPUs (engines on other GPUs than the policy)."""

    sender_cls = _NcclSender
    receiver_cls = _NcclReceiver
    device_types = ("cuda",)
    same_device_ok = False
