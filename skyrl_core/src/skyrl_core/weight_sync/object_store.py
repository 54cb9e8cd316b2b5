"""``ray``: weights travel through Ray's object store (across nodes, or on one GPU, with no process group).

The sender puts each chunk (moved to CPU) into the object store and the request carries the reference; each
receiver fetches it. Only one chunk is in the store at a time: the reference is dropped once every engine applied
the chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from skyrl_core.weight_sync.base import (
    WeightChunk,
    WeightReceiver,
    WeightSender,
    WeightTransport,
    WeightUpdateRequest,
)


class ObjectStoreSender(WeightSender):
    def prepare(self, chunk: WeightChunk) -> WeightUpdateRequest:
        import ray

        ref = ray.put([t.cpu() for t in chunk.tensors])
        return WeightUpdateRequest.describe(chunk, payload=[ref])  # a list: Ray would resolve a bare reference

    def send(self, chunk: WeightChunk) -> None:
        """Nothing to do: the data went with the request."""


class ObjectStoreReceiver(WeightReceiver):
    def receive(self, request: WeightUpdateRequest, device: torch.device) -> Iterator[tuple[str, torch.Tensor]]:
        import ray

        tensors = ray.get(request.payload[0])
        for name, tensor in zip(request.names, tensors, strict=True):
            yield name, tensor.to(device)


class RayObjectStoreTransport(WeightTransport):
    """Through Ray's object store: works across nodes and between processes that share one GPU."""

    sender_cls = ObjectStoreSender
    receiver_cls = ObjectStoreReceiver
    device_types = ("cpu", "cuda")
    needs_rendezvous = False
