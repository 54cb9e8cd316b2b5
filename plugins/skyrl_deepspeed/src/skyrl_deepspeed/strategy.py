"""``deepspeed``: DeepSpeed's engine with ZeRO stage 1, 2 or 3, skyrl's torch AdamW as the client optimizer.

ZeRO 1 partitions the optimizer state over the ranks, ZeRO 2 the gradients too, ZeRO 3 the parameters too. DeepSpeed
averages gradients over ranks, so :meth:`backward` multiplies the loss (this rank's share of the global sum) by the
data-parallel size. Gradient clipping and the non-finite check happen inside ``engine.step()``. On a machine
without CUDA the engine runs on DeepSpeed's CPU accelerator over gloo, and no DeepSpeed op is compiled (the client
optimizer is ``torch.optim.AdamW``).
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from skyrl_core.errors import UserError
from skyrl_core.strategy.base import Mesh, ModelHead, StepStats, Strategy
from skyrl_core.strategy.common import build_optimizer_and_scheduler, load_hf_model
from skyrl_core.weight_sync.base import WeightChunk
from skyrl_deepspeed.config import DeepSpeedConfig, engine_config, zero_stage

#: The tag (sub-folder) of DeepSpeed's checkpoint inside the folder skyrl gives.
CHECKPOINT_TAG = "deepspeed"


class DeepSpeedStrategy(Strategy):
    """A DeepSpeed engine per worker group; the config comes from ``trainer.deepspeed.deepspeed_config``."""

    def __init__(self, *, config: DeepSpeedConfig | None = None, run_config: Any):
        super().__init__(config=config or DeepSpeedConfig(), run_config=run_config)
        self.stage = zero_stage(self.config)
        self.engine: Any = None
        self.max_grad_norm = 0.0

    def init_distributed(self, *, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        use_cuda = torch.cuda.is_available()
        self.device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        # DeepSpeed reads its place from the environment; the accelerator must be chosen before it is imported.
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR=master_addr,
                          MASTER_PORT=str(master_port), LOCAL_RANK=str(self.device.index or 0))
        if not use_cuda:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
            _disable_op_compilation()
        if not dist.is_initialized():  # DeepSpeed wraps an existing group
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                    timeout=datetime.timedelta(minutes=30))
        self.mesh = Mesh.data_parallel(rank, world_size)

    def build_model(self, model_path: str, *, trainable: bool, optimizer_config: Any = None,
                    head: ModelHead = "lm") -> None:
        """Every rank loads the HF model, then ``deepspeed.initialize`` partitions it (ZeRO 3: the parameters are
        freed down to this rank's partition there)."""
        import deepspeed

        model = load_hf_model(model_path, self.run_config, trainable=trainable, head=head)
        optimizer = scheduler = None
        if trainable:
            optimizer, scheduler = build_optimizer_and_scheduler(model, optimizer_config)
            self.max_grad_norm = float(optimizer_config.max_grad_norm)
        config = engine_config(self.config, bf16=self.run_config.trainer.bf16, max_grad_norm=self.max_grad_norm)
        self.engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                                    config=config)

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        assert self.engine is not None, "build_model first"
        return self.engine.module

    # -- the step -----------------------------------------------------------------------------------------------

    def forward(self, **model_inputs: Any) -> Any:
        assert self.engine is not None, "build_model first"
        return self.engine(**model_inputs)

    def backward(self, loss: torch.Tensor) -> None:
        # DeepSpeed averages gradients over ranks; the loss is a share of a sum. gradient_accumulation_steps is 1,
        # so engine.backward does not divide the loss again.
        self.engine.backward(loss * self.mesh.dp_size)

    @contextlib.contextmanager
    def _boundary(self, last: bool) -> Iterator[None]:
        self.engine.set_gradient_accumulation_boundary(last)
        yield

    def accumulate(self, *, last: bool) -> contextlib.AbstractContextManager[Any]:
        """Marks whether this micro-batch ends the mini-batch (DeepSpeed has no ``no_sync`` under ZeRO 2 and 3:
        those reduce every micro-batch into the partitioned gradients)."""
        return self._boundary(last)

    def optimizer_step(self, max_norm: float) -> StepStats:
        """``engine.step()``: the global norm over all partitions, clipping by ``min(1, max_norm / (norm + 1e-6))``
        (``gradient_clipping``, fixed when the engine is built), AdamW, the schedule; a non-finite norm skips the
        update and the schedule."""
        assert self.engine is not None and self.engine.optimizer is not None, "build_model(trainable=True) first"
        if max(max_norm, 0.0) != max(self.max_grad_norm, 0.0):
            raise ValueError(f"max_norm={max_norm} differs from the max_grad_norm={self.max_grad_norm} the "
                             "DeepSpeed engine was built with (DeepSpeed fixes gradient_clipping at initialisation)")
        lr = self.current_lr()
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        norm = float(norm) if norm is not None else math.nan
        return StepStats(grad_norm=norm, lr=lr, skipped=not self.engine.was_step_applied())

    def current_lr(self) -> float:
        assert self.engine is not None, "build_model first"
        return float(self.engine.get_lr()[0])

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.mesh.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    # -- weights ------------------------------------------------------------------------------------------------

    def _gathered(self, tensors: list[torch.Tensor]) -> contextlib.AbstractContextManager[Any]:
        """ZeRO 3: the full parameters inside the block (a collective: every rank enters with the same list)."""
        import deepspeed

        partitioned = list({id(t): t for t in tensors if hasattr(t, "ds_id")}.values())
        return deepspeed.zero.GatheredParameters(partitioned, enabled=bool(partitioned))

    def iter_weights(self, *, dtype: torch.dtype, bucket_bytes: int) -> Iterator[WeightChunk]:
        """Buckets planned from the full sizes (``ds_numel`` under ZeRO 3), each gathered once and copied out cast
        to ``dtype``; the gathered parameters are freed again before the bucket is yielded."""
        for bucket in _plan_buckets(self.unwrapped_model.state_dict(keep_vars=True).items(), dtype, bucket_bytes):
            with self._gathered([tensor for _, tensor in bucket]):
                tensors = [tensor.detach().to(dtype, copy=True) for _, tensor in bucket]
            yield WeightChunk(names=[name for name, _ in bucket], tensors=tensors)

    def named_grads(self) -> Iterator[tuple[str, torch.Tensor]]:
        from deepspeed.utils import safe_get_full_grad

        for name, param in self.unwrapped_model.named_parameters():
            grad = safe_get_full_grad(param)  # a collective under ZeRO 2 and 3
            if grad is not None:
                yield name, grad

    # -- memory and state ---------------------------------------------------------------------------------------

    def offload(self, *, model: bool = True, optimizer: bool = True) -> None:
        if self.device.type != "cuda":
            return
        from deepspeed.runtime.zero.offload_config import OffloadStateTypeEnum as States

        include = set()
        if model:
            include |= {States.lp_params, States.lp_grads}
        if optimizer:
            include |= {States.optim_states, States.hp_params, States.contiguous_grad_buffer}
        self._engine_with_optimizer("offload").offload_states(include=include)
        torch.cuda.empty_cache()

    def onload(self, *, model: bool = True, optimizer: bool = True) -> None:
        if self.device.type != "cuda":
            return
        self._engine_with_optimizer("onload").reload_states()

    def _engine_with_optimizer(self, what: str) -> Any:
        if self.engine.optimizer is None:
            raise UserError(f"deepspeed: {what} of a model without an optimizer (ref) is not supported yet; set "
                            "trainer.placement.colocate_all=false, or use trainer.strategy=fsdp2")
        return self.engine

    def save_checkpoint(self, folder: str) -> None:
        """DeepSpeed's own layout under ``folder/deepspeed``: every rank writes its partitions (model states and
        optimizer), with the schedule. Reload with the same number of ranks and ZeRO stage."""
        self.engine.save_checkpoint(folder, tag=CHECKPOINT_TAG, save_latest=False)

    def load_checkpoint(self, folder: str, *, load_optimizer: bool = True) -> None:
        path = os.path.join(folder, CHECKPOINT_TAG)
        if not os.path.isdir(path):
            raise UserError(f"{folder} holds no deepspeed checkpoint (no {CHECKPOINT_TAG}/ folder): it is "
                            "incomplete or was written by another strategy. Resume from another checkpoint "
                            "(trainer.resume_mode=from_path trainer.resume_path=...) or with the strategy that "
                            "wrote it")
        loaded, _ = self.engine.load_checkpoint(folder, tag=CHECKPOINT_TAG, load_module_only=not load_optimizer,
                                                load_optimizer_states=load_optimizer,
                                                load_lr_scheduler_states=load_optimizer)
        if loaded is None:
            raise UserError(f"deepspeed could not load the checkpoint {path}. Resume with the number of ranks and "
                            "ZeRO stage it was written with, or from another checkpoint")


def _disable_op_compilation() -> None:
    """Mark every DeepSpeed op as unavailable on this machine, so nothing is JIT-compiled (DeepSpeed would otherwise
    build its shared-memory all-reduce op for the CPU accelerator with g++ at the first ``initialize``); torch's
    collectives over gloo and torch's AdamW do the work instead."""
    import deepspeed.ops
    from deepspeed.ops.op_builder.all_ops import ALL_OPS

    deepspeed.ops.__compatible_ops__ = dict.fromkeys(ALL_OPS, False)


def _plan_buckets(named: Any, dtype: torch.dtype, bucket_bytes: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Consecutive ``(name, tensor)`` groups of at most ``bucket_bytes`` once gathered and cast (a larger tensor
    alone)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    bucket: list[tuple[str, torch.Tensor]] = []
    size = 0
    for name, tensor in named:
        nbytes = getattr(tensor, "ds_numel", tensor.numel()) * itemsize
        if bucket and size + nbytes > bucket_bytes:
            yield bucket
            bucket, size = [], 0
        bucket.append((name, tensor))
        size += nbytes
    if bucket:
        yield bucket
