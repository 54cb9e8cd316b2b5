"""The weight-sync interface: the policy's weights streamed to the inference engines, described by the sender.

A transport (``generator.weight_sync_backend``) registers one :class:`WeightTransport` subclass naming its sender
and receiver classes together. One sync, with ``E`` engines whose processes total ``R`` receivers:

1. once per run, the driver makes a :class:`WeightSyncInitInfo` (address, port, ``world_size = 1 + R``); policy
   rank 0 builds the sender from it and every engine builds one receiver in each of its worker processes
   (a tensor-parallel engine has several), with ranks ``1..R``; all of them call ``connect`` at the same time;
2. every policy rank iterates ``strategy.iter_weights(dtype, bucket_bytes)``; for each :class:`WeightChunk`,
   rank 0 calls ``request = sender.prepare(chunk)``, hands ``request`` to every engine (which applies it with
   ``receiver.receive(request)`` in each worker process) and, at the same time, ``sender.send(chunk)``;
3. after the last chunk each engine resets its prefix cache, and a probe compares the engine's log-probs of a
   fixed token sequence with the trainer's, failing the run loudly when they disagree.

The sender describes every chunk (HF names, dtypes, shapes): the engine never dictates names, which lets engines
with fused parameters (vLLM's ``qkv_proj``) map HF names themselves. During a sync the sending rank holds at most
one chunk beyond its own parameters.

Construction convention: ``sender_cls(config=<generator.<transport> section or None>, init_info=...)`` and
``receiver_cls(config=..., init_info=..., rank=...)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import attrs
import torch


def dtype_of(name: str) -> torch.dtype:
    """``"bfloat16"`` / ``"torch.bfloat16"`` -> ``torch.bfloat16``."""
    value = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown torch dtype '{name}'")
    return value


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


@attrs.define(kw_only=True)
class WeightChunk:
    """Consecutive whole parameters with their HF names; ``tensors`` live on the sender only."""

    names: list[str]
    tensors: list[torch.Tensor]

    @property
    def dtypes(self) -> list[str]:
        return [dtype_name(t.dtype) for t in self.tensors]

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(t.shape) for t in self.tensors]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)


@attrs.frozen(kw_only=True)
class WeightUpdateRequest:
    """What an engine receives for one chunk: the sender's description plus a transport-specific ``payload``
    (``None`` for collectives; object references for ``ray``; IPC handles for ``cuda_ipc``)."""

    names: list[str]
    dtypes: list[str]
    shapes: list[tuple[int, ...]]
    payload: Any = None

    @property
    def numels(self) -> list[int]:
        return [math.prod(shape) for shape in self.shapes]

    @classmethod
    def describe(cls, chunk: WeightChunk, payload: Any = None) -> WeightUpdateRequest:
        return cls(names=list(chunk.names), dtypes=chunk.dtypes, shapes=chunk.shapes, payload=payload)


@attrs.frozen(kw_only=True)
class WeightSyncInitInfo:
    """Everything a sender or receiver needs to connect; made once by the driver, sent to every side."""

    transport: str
    master_addr: str
    master_port: int
    world_size: int
    extra: dict[str, Any] = attrs.field(factory=dict)


class WeightSender(ABC):
    """The sending side, on policy rank 0."""

    def __init__(self, *, config: Any = None, init_info: WeightSyncInitInfo):
        self.config = config
        self.init_info = init_info

    def connect(self) -> None:
        """Join the transport (runs while every receiver's ``connect`` runs)."""

    def prepare(self, chunk: WeightChunk) -> WeightUpdateRequest:
        """Describe ``chunk`` for the receivers (and stage it, for transports whose payload carries the data)."""
        return WeightUpdateRequest.describe(chunk)

    @abstractmethod
    def send(self, chunk: WeightChunk) -> None:
        """Move ``chunk`` (runs while every receiver's ``receive`` of its request runs)."""

    def close(self) -> None:
        """Tear the transport down."""


class WeightReceiver(ABC):
    """One receiving side, in one worker process of an engine; ``rank`` is in ``1..world_size-1``."""

    def __init__(self, *, config: Any = None, init_info: WeightSyncInitInfo, rank: int):
        self.config = config
        self.init_info = init_info
        self.rank = rank

    def connect(self) -> None:
        """Join the transport (runs while the sender's ``connect`` runs)."""

    @abstractmethod
    def receive(self, request: WeightUpdateRequest, device: torch.device) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(name, tensor)`` for every weight of ``request``, in order, on ``device``. The tensors may be
        views of one buffer that is reused after the iteration ends: copy what you keep."""

    def close(self) -> None:
        """Tear the transport down."""


class WeightTransport:
    """What ``register_weight_sync_backends`` registers: a sender and a receiver class that work together."""

    sender_cls: ClassVar[type[WeightSender]]
    receiver_cls: ClassVar[type[WeightReceiver]]
    #: Device types the transport moves tensors between (``"cpu"``, ``"cuda"``).
    device_types: ClassVar[tuple[str, ...]] = ("cpu",)
    #: False when a sender and a receiver may not share one device (NCCL refuses two ranks on one GPU).
    same_device_ok: ClassVar[bool] = True
    #: True when the transport needs a TCP rendezvous (``master_addr``/``master_port`` in the init info).
    needs_rendezvous: ClassVar[bool] = True


def buckets_of(
    named_tensors: Iterable[tuple[str, torch.Tensor]], *, dtype: torch.dtype, bucket_bytes: int
) -> Iterator[WeightChunk]:
    """Group ``(name, tensor)`` pairs into chunks of at most ``bucket_bytes`` after casting to ``dtype`` (a larger
    tensor gets a chunk of its own). Tensors are cast and detached one at a time, so while a chunk fills, only that
    chunk exists beyond the inputs; the input iterator is consumed lazily (sharded strategies gather inside it)."""
    names: list[str] = []
    tensors: list[torch.Tensor] = []
    size = 0
    for name, tensor in named_tensors:
        cast = tensor.detach().to(dtype).contiguous()
        nbytes = cast.numel() * cast.element_size()
        if tensors and size + nbytes > bucket_bytes:
            yield WeightChunk(names=names, tensors=tensors)
            names, tensors, size = [], [], 0
        names.append(name)
        tensors.append(cast)
        size += nbytes
    if tensors:
        yield WeightChunk(names=names, tensors=tensors)
