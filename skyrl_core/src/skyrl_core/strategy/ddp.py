"""``ddp``: plain PyTorch DistributedDataParallel over 1..N processes (gloo on CPU, nccl on GPU).

Every rank holds the full model and optimizer state; gradients are averaged across ranks by DDP. Works on a
CPU-only laptop, which is what makes the whole loop testable without GPUs.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist

from skyrl_core.strategy.base import Strategy
from skyrl_core.strategy.common import build_optimizer_and_scheduler, load_hf_model


class DDPStrategy(Strategy):
    """DistributedDataParallel; bf16 autocast when ``trainer.bf16`` (fp32 master weights)."""

    def init_distributed(self, *, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        self.rank, self.world_size = rank, world_size
        use_cuda = torch.cuda.is_available()
        self.device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        if world_size > 1 and not dist.is_initialized():
            os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = master_addr, str(master_port)
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo",
                rank=rank,
                world_size=world_size,
                timeout=datetime.timedelta(minutes=30),
            )

    def build_model(self, model_path: str, *, trainable: bool, optimizer_config: Any = None) -> torch.nn.Module:
        model = load_hf_model(model_path, self.config, trainable=trainable).to(self.device)
        if trainable and self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        self.model = model
        if trainable:
            self.optimizer, self.scheduler = build_optimizer_and_scheduler(self.unwrapped_model, optimizer_config)
        return model

    def no_sync(self) -> contextlib.AbstractContextManager[Any]:
        if isinstance(self.model, torch.nn.parallel.DistributedDataParallel):
            return self.model.no_sync()
        return contextlib.nullcontext()

    def clip_grad_norm(self, max_norm: float) -> float:
        params = [p for p in self.unwrapped_model.parameters() if p.grad is not None]
        if max_norm > 0:
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        norms = torch.stack([p.grad.detach().norm(2) for p in params]) if params else torch.zeros(1)
        return float(norms.norm(2))

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def full_state_dict(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from self.unwrapped_model.state_dict().items()

    def save_checkpoint(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        state = {"model": self.unwrapped_model.state_dict()}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
            state["scheduler"] = self.scheduler.state_dict() if self.scheduler is not None else None
        torch.save(state, os.path.join(folder, f"rank_{self.rank}.pt"))

    def load_checkpoint(self, folder: str, *, load_optimizer: bool = True) -> None:
        state = torch.load(os.path.join(folder, f"rank_{self.rank}.pt"), map_location=self.device)
        self.unwrapped_model.load_state_dict(state["model"])
        if load_optimizer and self.optimizer is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])

    def offload(self) -> None:
        if self.device.type == "cuda" and self.model is not None:
            self.model.to("cpu")
            torch.cuda.empty_cache()

    def backload(self) -> None:
        if self.device.type == "cuda" and self.model is not None:
            self.model.to(self.device)
