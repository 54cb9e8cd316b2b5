"""The strategy interface: what a training worker needs from ``ddp``, ``fsdp2``, ``deepspeed``, ...

A worker (policy, ref or critic) owns one strategy instance. The worker does the RL maths (log-probs, losses,
reductions) once; the strategy only provides the distributed parts:

1. ``init_distributed`` joins the worker group's process group (rank, world size, master address).
2. ``build_model`` loads and wraps the HF model (trainable or frozen) on ``self.device``.
3. ``backward`` / ``clip_grad_norm`` / ``optimizer_step`` run one optimisation step; ``no_sync`` skips the
   gradient all-reduce for all but the last micro-batch of an accumulation.
4. ``full_state_dict`` yields the unsharded weights on rank 0 (HF names), for weight sync and HF export.
5. ``save_checkpoint`` / ``load_checkpoint`` save and restore model, optimizer and scheduler state.
6. ``offload`` / ``backload`` move model and optimizer state off the device when colocated with inference.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch


class Strategy(ABC):
    """One worker's view of a distributed training setup.

    Constructed as ``strategy_cls(config=..., section=...)`` where ``config`` is the whole run config and
    ``section`` the strategy's own config section (``trainer.<name>``) or ``None``.
    """

    def __init__(self, *, config: Any, section: Any = None):
        self.config = config
        self.section = section
        self.rank = 0
        self.world_size = 1
        self.device = torch.device("cpu")
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None

    @abstractmethod
    def init_distributed(self, *, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        """Join the worker group's process group and pick ``self.device``."""

    @abstractmethod
    def build_model(self, model_path: str, *, trainable: bool, optimizer_config: Any = None) -> torch.nn.Module:
        """Load the HF causal LM, wrap it, and (when trainable) build optimizer and LR scheduler."""

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        """The HF model inside any wrapper."""
        assert self.model is not None
        return getattr(self.model, "module", self.model)

    def no_sync(self) -> contextlib.AbstractContextManager[Any]:
        """Context in which backward does not all-reduce gradients (accumulation)."""
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    @abstractmethod
    def clip_grad_norm(self, max_norm: float) -> float:
        """Clip the global gradient norm (no clipping when ``max_norm <= 0``); return the norm before clipping."""

    def optimizer_step(self) -> None:
        assert self.optimizer is not None
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def current_lr(self) -> float:
        assert self.optimizer is not None
        return float(self.optimizer.param_groups[0]["lr"])

    @abstractmethod
    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the worker group (in place) and return it."""

    @abstractmethod
    def full_state_dict(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Unsharded weights with HF names; every rank must iterate it (collectives), rank 0 gets the tensors."""

    @abstractmethod
    def save_checkpoint(self, folder: str) -> None:
        """Save model, optimizer and scheduler state of this rank into ``folder``."""

    @abstractmethod
    def load_checkpoint(self, folder: str, *, load_optimizer: bool = True) -> None:
        """Restore what :meth:`save_checkpoint` wrote."""

    def offload(self) -> None:
        """Free device memory for inference (colocated on GPU); no-op on CPU."""

    def backload(self) -> None:
        """Undo :meth:`offload`."""
