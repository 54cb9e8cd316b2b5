"""The ``cuda_ipc`` weight-sync transport: engines read the policy's chunk straight from its GPU memory.

For colocated runs (``trainer.placement.colocate_all``), where NCCL cannot connect two ranks on one GPU. Per chunk,
the sender (policy rank 0) packs the chunk's tensors (one dtype: :func:`skyrl_core.weight_sync.base.buckets_of`
casts them) into one flat CUDA buffer, waits for the copy to finish, and puts the buffer's CUDA IPC handle
(``torch.multiprocessing.reductions.reduce_tensor``) in the request's payload, keyed by the GPU's physical UUID
(``CUDA_VISIBLE_DEVICES`` renumbers devices per process, the UUID does not). Each receiver opens the handle on its
local index of that GPU (``rebuild_cuda_tensor`` with argument 6, the device index, replaced), yields slices of it
viewed to each weight's shape, and synchronizes its stream once the consumer has issued its copies, so that the
sender may reuse the memory when the next chunk is prepared.

Lifetimes: the sender keeps the buffer of the latest chunk alive until the next ``prepare`` or ``close`` (the
trainer applies a chunk on every engine before preparing the next); ``close`` drops it and calls
``torch.cuda.ipc_collect()``.

A receiver must see the sender's GPU: today only policy rank 0 sends, so every engine worker must share its GPU
(one colocated GPU). :meth:`CudaIpcTransport.merge` joins the payloads of several senders (one per GPU) into one
request, ready for a trainer that has every policy rank prepare its own copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs
import torch

from skyrl_core.errors import UserError
from skyrl_core.weight_sync.base import WeightChunk, WeightReceiver, WeightSender, WeightTransport, WeightUpdateRequest

#: Index of the device index among ``rebuild_cuda_tensor``'s arguments (torch/multiprocessing/reductions.py).
DEVICE_ARG = 6


@attrs.frozen(kw_only=True)
class CudaIpcPayload:
    """``handles``: physical GPU UUID -> the ``rebuild_cuda_tensor`` arguments of a flat buffer on that GPU."""

    handles: dict[str, tuple[Any, ...]]


def flat_ranges(numels: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of each tensor in the flat buffer, in order."""
    ranges, start = [], 0
    for numel in numels:
        ranges.append((start, start + numel))
        start += numel
    return ranges


def with_device_index(args: tuple[Any, ...], index: int) -> tuple[Any, ...]:
    """``rebuild_cuda_tensor`` arguments retargeted to local device ``index``."""
    return (*args[:DEVICE_ARG], index, *args[DEVICE_ARG + 1 :])


def pick_handle(payload: CudaIpcPayload, visible_uuids: Sequence[str]) -> tuple[int, tuple[Any, ...]]:
    """``(local device index, rebuild arguments)`` of the first handle whose GPU this process sees, preferring
    the order of ``visible_uuids`` (device 0 first: a worker's own device)."""
    for index, uuid in enumerate(visible_uuids):
        if uuid in payload.handles:
            return index, with_device_index(payload.handles[uuid], index)
    raise UserError(
        f"generator.weight_sync_backend=cuda_ipc: this engine worker sees GPUs {list(visible_uuids)} but the weights "
        f"are on {sorted(payload.handles)}; cuda_ipc needs every engine on the GPU of policy rank 0 (one colocated "
        "GPU). With engines on other GPUs use generator.weight_sync_backend=nccl and "
        "trainer.placement.colocate_all=false")


def visible_gpu_uuids() -> list[str]:
    """Physical UUIDs of the GPUs this process sees, by local index."""
    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]


def pack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One flat contiguous tensor holding ``tensors`` in order (a lone contiguous tensor is used as it is)."""
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1:
        raise ValueError(f"a cuda_ipc chunk must hold one dtype, got {sorted(map(str, dtypes))}")
    if len(tensors) == 1 and tensors[0].is_contiguous():
        return tensors[0].reshape(-1)
    return torch.cat([t.reshape(-1) for t in tensors])


def unpack(flat: torch.Tensor, request: WeightUpdateRequest) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, view)`` of every weight of ``request`` inside ``flat``."""
    if flat.numel() != sum(request.numels):
        raise RuntimeError(f"cuda_ipc buffer holds {flat.numel()} elements, the request describes "
                           f"{sum(request.numels)}")
    for name, (start, end), shape in zip(request.names, flat_ranges(request.numels), request.shapes, strict=True):
        yield name, flat[start:end].view(shape)


class CudaIpcSender(WeightSender):
    """Stages each chunk in a buffer of its own and describes it with an IPC handle."""

    def __init__(self, *, config: Any = None, init_info: Any) -> None:
        super().__init__(config=config, init_info=init_info)
        self._staged: torch.Tensor | None = None

    def prepare(self, chunk: WeightChunk) -> WeightUpdateRequest:
        from torch.multiprocessing.reductions import reduce_tensor

        if any(not t.is_cuda for t in chunk.tensors):
            raise UserError("generator.weight_sync_backend=cuda_ipc needs the policy on CUDA GPUs; use gloo or ray "
                            "on CPU")
        self._staged = None  # the previous chunk has been applied by every engine
        flat = pack(chunk.tensors)
        torch.cuda.current_stream(flat.device).synchronize()  # the bytes are in place before anyone reads them
        self._staged = flat
        _, args = reduce_tensor(flat)
        uuid = str(torch.cuda.get_device_properties(flat.device).uuid)
        return WeightUpdateRequest.describe(chunk, payload=CudaIpcPayload(handles={uuid: args}))

    def send(self, chunk: WeightChunk) -> None:
        """Nothing moves here: receivers read the staged buffer through the handle in the request."""

    def close(self) -> None:
        self._staged = None
        if torch.cuda.is_available():
            torch.cuda.ipc_collect()


class CudaIpcReceiver(WeightReceiver):
    """Opens the sender's buffer and yields views of it."""

    def receive(self, request: WeightUpdateRequest, device: torch.device) -> Iterator[tuple[str, torch.Tensor]]:
        from torch.multiprocessing.reductions import rebuild_cuda_tensor

        index, args = pick_handle(request.payload, visible_gpu_uuids())
        flat = rebuild_cuda_tensor(*args)
        for name, view in unpack(flat, request):
            yield name, view if view.device == device else view.to(device)
        torch.cuda.current_stream(index).synchronize()  # every copy out of the sender's memory is done
        del flat


class CudaIpcTransport(WeightTransport):
    sender_cls = CudaIpcSender
    receiver_cls = CudaIpcReceiver
    device_types = ("cuda",)
    same_device_ok = True
    needs_rendezvous = False

    @staticmethod
    def merge(requests: Iterable[WeightUpdateRequest]) -> WeightUpdateRequest:
        """One request carrying the handles of every sender's copy of the same chunk (one sender per GPU)."""
        requests = list(requests)
        first = requests[0]
        handles: dict[str, tuple[Any, ...]] = {}
        for request in requests:
            if (request.names, request.dtypes, request.shapes) != (first.names, first.dtypes, first.shapes):
                raise ValueError("cuda_ipc: the senders described different chunks")
            handles.update(request.payload.handles)
        return attrs.evolve(first, payload=CudaIpcPayload(handles=handles))

