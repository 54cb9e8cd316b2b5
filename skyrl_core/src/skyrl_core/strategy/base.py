"""The strategy interface: what a training worker needs from ``ddp``, ``fsdp2``, ``deepspeed``, ...

A worker (policy, ref or critic) owns one strategy. The strategy owns the model, the optimizer and the LR schedule
and the whole optimisation step; the worker does the RL maths (log-probs, losses, reductions) once, for every
strategy. One training step, as the worker calls it::

    strategy.set_train(True)
    for i, micro in enumerate(micro_batches):
        with strategy.accumulate(last=i == len(micro_batches) - 1):
            out = strategy.forward(input_ids=..., attention_mask=..., position_ids=..., logits_to_keep=...)
            loss = ...                # this rank's share of the global (whole mini-batch) loss sum
            strategy.backward(loss)
    stats = strategy.optimizer_step(max_norm)   # clip, step, schedule, zero grads -> StepStats

Rows are dispatched by :attr:`Strategy.mesh`: every rank with the same ``dp_rank`` receives the same rows (sequence
and tensor parallel ranks share them), so the trainer splits a batch ``dp_size`` ways, not ``world_size`` ways.

Loss scale. The worker normalises the loss by global counts (tokens or sequences of the whole mini-batch over all
data-parallel ranks), so the *sum* over ranks of what each rank passes to :meth:`Strategy.backward` is the
mini-batch loss. A strategy whose gradient reduction averages over ranks (DDP, FSDP, DeepSpeed all do) multiplies
by ``dp_size`` inside ``backward``; the worker never knows how gradients are reduced.

Weights leave the strategy only through :meth:`Strategy.iter_weights`: unsharded, with HF parameter names, in
buckets. Every rank iterates it (sharded strategies run a collective per parameter or bucket); the chunks are only
meaningful on rank 0, which sends them. At most one bucket plus one parameter is held at a time, never the whole
model a second time.

Construction convention (every registered class except environments): ``strategy_cls(config=<its own config
section, or None when it registered no config class>, run_config=<the whole run config>)``.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Literal

import attrs
import torch

from skyrl_core.weight_sync.base import WeightChunk

#: What :meth:`Strategy.build_model` puts on top of the transformer: the LM head (policy, ref) or a scalar value
#: head (critic: ``AutoModelForTokenClassification`` with one label).
ModelHead = Literal["lm", "value"]


@attrs.frozen
class Mesh:
    """Where one rank sits in its worker group.

    ``rank``/``world_size`` are the process's place in the torch.distributed group; ``dp_rank``/``dp_size`` decide
    which rows it trains on. Ranks that differ only in their sequence- or tensor-parallel coordinate get the same
    rows. With plain data parallelism ``dp_rank == rank`` and ``dp_size == world_size``.
    """

    rank: int = 0
    world_size: int = 1
    dp_rank: int = 0
    dp_size: int = 1
    sp_size: int = 1
    tp_size: int = 1

    @classmethod
    def data_parallel(cls, rank: int, world_size: int) -> Mesh:
        return cls(rank=rank, world_size=world_size, dp_rank=rank, dp_size=world_size)


@attrs.frozen
class StepStats:
    """What one optimizer step did: the gradient norm before clipping, the LR it used, and whether it was skipped
    (a non-finite gradient norm: no update, gradients dropped, the schedule not advanced)."""

    grad_norm: float
    lr: float
    skipped: bool = False


class Strategy(ABC):
    """One worker's view of a distributed training setup (see the module doc for the calling sequence)."""

    #: True when the strategy runs without a GPU (CPU-only machines, tests).
    supports_cpu: bool = True

    def __init__(self, *, config: Any = None, run_config: Any):
        self.config = config
        self.run_config = run_config
        self.mesh = Mesh()
        self.device = torch.device("cpu")

    # -- set-up -------------------------------------------------------------------------------------------------

    @abstractmethod
    def init_distributed(self, *, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        """Join the worker group's process group, pick :attr:`device` and set :attr:`mesh`."""

    @abstractmethod
    def build_model(
        self, model_path: str, *, trainable: bool, optimizer_config: Any = None, head: ModelHead = "lm"
    ) -> None:
        """Load the HF model at ``model_path`` with ``head``, wrap it for this strategy and, when ``trainable``,
        build the optimizer and LR schedule from ``optimizer_config`` (``trainer.<role>.optimizer_config``)."""

    # -- the step -----------------------------------------------------------------------------------------------

    @abstractmethod
    def forward(self, **model_inputs: Any) -> Any:
        """Run the model (the only way to): HF keyword inputs in, the HF model output out (``.logits``).

        Mixed precision, sequence-parallel sharding of the inputs and parameter gathering happen here. Autograd
        follows the caller's grad mode.
        """

    def set_train(self, mode: bool) -> None:
        """Dropout and friends on (training) or off (log-prob passes)."""
        self.unwrapped_model.train(mode)

    @abstractmethod
    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss``, this rank's share of the global loss *sum* (see the module doc)."""

    def accumulate(self, *, last: bool) -> contextlib.AbstractContextManager[Any]:
        """Wraps the forward and backward of one micro-batch; gradients are reduced across ranks only when
        ``last`` (the mini-batch's final micro-batch)."""
        return contextlib.nullcontext()

    @abstractmethod
    def optimizer_step(self, max_norm: float) -> StepStats:
        """Clip the global gradient norm to ``max_norm`` (``<= 0``: no clipping), step the optimizer and the
        schedule, zero the gradients. A non-finite norm skips the update (see :class:`StepStats`)."""

    @abstractmethod
    def current_lr(self) -> float:
        """The learning rate the next optimizer step uses."""

    @abstractmethod
    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the whole worker group (in place) and return it."""

    # -- weights ------------------------------------------------------------------------------------------------

    @abstractmethod
    def iter_weights(self, *, dtype: torch.dtype, bucket_bytes: int) -> Iterator[WeightChunk]:
        """The unsharded weights with HF names, cast to ``dtype``, in chunks of at most ``bucket_bytes`` (a larger
        parameter gets a chunk of its own), in the same order on every rank. Every rank must iterate to the end."""

    def named_grads(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The unsharded gradients with HF names (gradient checks in tests); every rank must iterate."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its gradients")

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        """The HF model inside any wrapper (its parameters may be sharded)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its model")

    # -- memory and state ---------------------------------------------------------------------------------------

    def offload(self, *, model: bool = True, optimizer: bool = True) -> None:
        """Move model weights and/or optimizer state off the accelerator (colocated with inference engines).
        Does nothing where there is nothing to free (CPU)."""

    def onload(self, *, model: bool = True, optimizer: bool = True) -> None:
        """Undo :meth:`offload`."""

    @abstractmethod
    def save_checkpoint(self, folder: str) -> None:
        """Save this rank's model, optimizer and schedule state into ``folder`` (which exists). Every rank calls
        it; what each rank writes (a full copy on rank 0, or its shard) is the strategy's choice, as long as
        :meth:`load_checkpoint` reads it back, also with another number of ranks where the strategy supports it."""

    @abstractmethod
    def load_checkpoint(self, folder: str, *, load_optimizer: bool = True) -> None:
        """Restore what :meth:`save_checkpoint` wrote; with ``load_optimizer=False`` the weights only."""
