"""``ddp``: plain PyTorch DistributedDataParallel over 1..N processes (gloo on CPU, nccl on GPU).

Every rank holds the full model and optimizer state; DDP averages gradients over ranks, so :meth:`backward`
multiplies the loss (this rank's share of the global sum) by the world size. Works on a CPU-only laptop, which is
what makes the whole loop testable without GPUs. With ``trainer.bf16`` the forward runs under bf16 autocast with
fp32 master weights.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from skyrl_core.mixed_precision import bf16_autocast, run_output_head_in_float32
from skyrl_core.strategy.base import Mesh, ModelHead, StepStats, Strategy
from skyrl_core.strategy.common import (
    build_optimizer_and_scheduler,
    clip_and_step,
    load_hf_model,
    load_state_files,
    move_optimizer_state,
    save_state_files,
)
from skyrl_core.weight_sync.base import WeightChunk, buckets_of


class DDPStrategy(Strategy):
    """DistributedDataParallel; the model is replicated on every rank."""

    def __init__(self, *, config: Any = None, run_config: Any):
        super().__init__(config=config, run_config=run_config)
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None

    def init_distributed(self, *, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        self.mesh = Mesh.data_parallel(rank, world_size)
        use_cuda = torch.cuda.is_available()
        self.device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        if world_size > 1 and not dist.is_initialized():
            os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = master_addr, str(master_port)
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                    timeout=datetime.timedelta(minutes=30))

    def build_model(self, model_path: str, *, trainable: bool, optimizer_config: Any = None,
                    head: ModelHead = "lm") -> None:
        model = load_hf_model(model_path, self.run_config, trainable=trainable, head=head, device=self.device)
        if self.run_config.trainer.bf16:
            run_output_head_in_float32(model)  # float32 logits, as the hf engine's bf16 computes them
        if trainable and self.mesh.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        self.model = model
        if trainable:
            self.optimizer, self.scheduler = build_optimizer_and_scheduler(
                self.unwrapped_model, optimizer_config, fused=self.device.type in ("cpu", "cuda"))

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        assert self.model is not None, "build_model first"
        return getattr(self.model, "module", self.model)

    # -- the step -----------------------------------------------------------------------------------------------

    def forward(self, **model_inputs: Any) -> Any:
        assert self.model is not None, "build_model first"
        # DDP's forward only prepares the gradient all-reduce when grads are on; without grads call the module.
        model = self.model if torch.is_grad_enabled() else self.unwrapped_model
        with bf16_autocast(self.device, self.run_config.trainer.bf16):
            return model(**model_inputs)

    def backward(self, loss: torch.Tensor) -> None:
        (loss * self.mesh.dp_size).backward()  # DDP averages gradients over ranks; the loss is a share of a sum

    def accumulate(self, *, last: bool) -> contextlib.AbstractContextManager[Any]:
        if not last and isinstance(self.model, torch.nn.parallel.DistributedDataParallel):
            return self.model.no_sync()
        return contextlib.nullcontext()

    def optimizer_step(self, max_norm: float) -> StepStats:
        assert self.optimizer is not None, "build_model(trainable=True) first"
        params = [p for p in self.unwrapped_model.parameters() if p.requires_grad]
        return clip_and_step(params, self.optimizer, self.scheduler, max_norm)

    def current_lr(self) -> float:
        assert self.optimizer is not None
        return float(self.optimizer.param_groups[0]["lr"])

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.mesh.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    # -- weights ------------------------------------------------------------------------------------------------

    def iter_weights(self, *, dtype: torch.dtype, bucket_bytes: int) -> Iterator[WeightChunk]:
        yield from buckets_of(self.unwrapped_model.state_dict().items(), dtype=dtype, bucket_bytes=bucket_bytes)

    def named_grads(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, param in self.unwrapped_model.named_parameters():
            if param.grad is not None:
                yield name, param.grad

    # -- memory and state ---------------------------------------------------------------------------------------

    def offload(self, *, model: bool = True, optimizer: bool = True) -> None:
        if self.device.type != "cuda":
            return
        if model and self.model is not None:
            self.model.to("cpu")
        if optimizer and self.optimizer is not None:
            move_optimizer_state(self.optimizer, torch.device("cpu"))
        torch.cuda.empty_cache()

    def onload(self, *, model: bool = True, optimizer: bool = True) -> None:
        if self.device.type != "cuda":
            return
        if model and self.model is not None:
            self.model.to(self.device)
        if optimizer and self.optimizer is not None:
            move_optimizer_state(self.optimizer, self.device)

    def save_checkpoint(self, folder: str) -> None:
        """Rank 0 writes the full model (safetensors) and optimizer/schedule state; replicas are identical."""
        if self.mesh.rank == 0:
            save_state_files(folder, self.unwrapped_model, self.optimizer, self.scheduler)

    def load_checkpoint(self, folder: str, *, load_optimizer: bool = True) -> None:
        """Every rank reads the full state (so a checkpoint loads with any number of ranks)."""
        load_state_files(folder, self.unwrapped_model, self.optimizer if load_optimizer else None,
                         self.scheduler if load_optimizer else None, device=self.device)
