"""The weight-sync interface.

One backend instance lives in policy rank 0 (the sender) and one in every inference engine actor (a receiver).
The driver orchestrates a sync:

- collective backends (``gloo``, ``nccl``): ``send`` and every ``receive`` run at the same time and meet in a
  broadcast over a process group made for weight sync (rank 0 = policy rank 0, ranks 1..N = engines);
- two-phase backends (``ray``): ``send`` returns a payload (object references) that the driver hands to each
  ``receive``.

Tensors move in the order of the engine's :meth:`~skyrl_core.inference.InferenceEngine.parameter_specs`, cast to
the engine's dtype, so the engine's weights equal the policy's exactly after a sync (up to that cast).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

import torch

#: (name, shape, dtype name) of one weight, as the engine reports it.
WeightSpec = tuple[str, tuple[int, ...], str]


def dtype_of(name: str) -> torch.dtype:
    return getattr(torch, name.removeprefix("torch."))


class WeightSyncBackend(ABC):
    """Transport of weights from policy rank 0 to the engines; ``section`` is ``generator.<name>`` or None."""

    #: True when the driver passes ``send``'s return value to ``receive`` (instead of running them together).
    two_phase: bool = False

    def __init__(self, *, section: Any = None):
        self.section = section

    @abstractmethod
    def init_sender(self, *, master_addr: str, master_port: int, num_receivers: int) -> None:
        """Set up the sending side (policy rank 0)."""

    @abstractmethod
    def init_receiver(self, *, master_addr: str, master_port: int, rank: int, num_receivers: int) -> None:
        """Set up one receiving side (engine ``rank`` in 1..num_receivers)."""

    @abstractmethod
    def send(self, tensors: dict[str, torch.Tensor], specs: list[WeightSpec]) -> Any:
        """Send ``tensors[name]`` for every spec, in spec order; returns the payload of two-phase backends."""

    @abstractmethod
    def receive(self, specs: list[WeightSpec], payload: Any = None) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(name, tensor)`` for every spec, in spec order."""

    def close(self) -> None:
        """Tear the transport down."""


def ordered_for_send(tensors: dict[str, torch.Tensor], specs: Iterable[WeightSpec]) -> Iterator[torch.Tensor]:
    """The policy's tensors in spec order, contiguous and cast to the engine's dtype; a missing name is an error."""
    for name, shape, dtype in specs:
        if name not in tensors:
            raise KeyError(f"weight sync: the policy has no weight '{name}' that the engine expects")
        tensor = tensors[name].detach()
        if tuple(tensor.shape) != tuple(shape):
            raise ValueError(
                f"weight sync: '{name}' has shape {tuple(tensor.shape)} in the policy, {shape} in the engine"
            )
        yield tensor.to(dtype_of(dtype)).contiguous()
