"""``fsdp2``: PyTorch's fully sharded data parallelism (``fully_shard``) per decoder layer and on the root.

Every rank holds a shard of each parameter, gradient and optimizer state (``trainer.fsdp2.fsdp_size`` ranks share
one copy; more ranks replicate it: hybrid sharding). FSDP averages gradients over all ranks, so :meth:`backward`
multiplies the loss (this rank's share of the global sum) by the data-parallel size. Weights leave one parameter at
a time (``DTensor.full_tensor()``, an all-gather), checkpoints are sharded (``torch.distributed.checkpoint``).
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
from torch.distributed.tensor import DTensor

from skyrl_core.errors import UserError
from skyrl_core.strategy.base import Mesh, ModelHead, StepStats, Strategy
from skyrl_core.strategy.common import build_optimizer_and_scheduler, move_optimizer_state
from skyrl_core.weight_sync.base import WeightChunk, buckets_of
from skyrl_fsdp.config import FSDPConfig
from skyrl_fsdp.sharding import build_sharded_model, device_mesh

#: The extra (non-tensor) state saved beside the sharded model and optimizer.
SCHEDULER_KEY = "scheduler"


class FSDP2Strategy(Strategy):
    """FSDP2 on a CPU (gloo) or CUDA (nccl) device mesh."""

    def __init__(self, *, config: FSDPConfig | None = None, run_config: Any):
        super().__init__(config=config or FSDPConfig(), run_config=run_config)
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.device_mesh: Any = None

    @property
    def section(self) -> str:
        return self.run_config.trainer.strategy if self.run_config.trainer.strategy in ("fsdp", "fsdp2") else "fsdp2"

    def init_distributed(self, *, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        use_cuda = torch.cuda.is_available()
        self.device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        if not dist.is_initialized():  # FSDP needs a process group even for one rank
            os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = master_addr, str(master_port)
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                    timeout=datetime.timedelta(minutes=30))
        self.mesh = Mesh.data_parallel(rank, world_size)
        self.device_mesh = device_mesh(self.device, world_size, self.config.fsdp_size, self.section)

    def build_model(self, model_path: str, *, trainable: bool, optimizer_config: Any = None,
                    head: ModelHead = "lm") -> None:
        assert self.device_mesh is not None, "init_distributed first"
        self.model = build_sharded_model(model_path, self.run_config, head=head, trainable=trainable,
                                         mesh=self.device_mesh, device=self.device, config=self.config)
        if trainable:  # after sharding: the optimizer holds the DTensor shards (fp32 master weights)
            self.optimizer, self.scheduler = build_optimizer_and_scheduler(self.model, optimizer_config)

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        assert self.model is not None, "build_model first"
        return self.model  # fully_shard changes the module's class in place; names stay the HF names

    # -- the step -----------------------------------------------------------------------------------------------

    def forward(self, **model_inputs: Any) -> Any:
        assert self.model is not None, "build_model first"
        return self.model(**model_inputs)  # __call__, not .forward: FSDP's hooks gather the parameters

    def backward(self, loss: torch.Tensor) -> None:
        (loss * self.mesh.dp_size).backward()  # FSDP averages gradients over ranks; the loss is a share of a sum

    @contextlib.contextmanager
    def _gradient_sync(self, enabled: bool) -> Iterator[None]:
        assert self.model is not None, "build_model first"
        self.model.set_requires_gradient_sync(enabled)
        try:
            yield
        finally:
            self.model.set_requires_gradient_sync(True)

    def accumulate(self, *, last: bool) -> contextlib.AbstractContextManager[Any]:
        """Not ``last``: gradients accumulate unsharded on each rank, reduce-scattered with the last micro-batch."""
        return self._gradient_sync(last)

    def optimizer_step(self, max_norm: float) -> StepStats:
        """Clip by the global L2 norm ``n = sqrt(sum over every shard of |g|^2)`` (one collective through DTensor):
        every gradient is multiplied by ``min(1, max_norm / (n + 1e-6))``, the formula of
        ``torch.nn.utils.clip_grad_norm_``. A non-finite ``n`` skips the step and the schedule."""
        assert self.optimizer is not None, "build_model(trainable=True) first"
        lr = self.current_lr()
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norm = _global_norm(grads)
        skipped = not math.isfinite(norm)
        if not skipped:
            if max_norm > 0 and norm > max_norm:
                coefficient = max_norm / (norm + 1e-6)
                for grad in grads:
                    grad.mul_(coefficient)
            self.optimizer.step()
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepStats(grad_norm=norm, lr=lr, skipped=skipped)

    def current_lr(self) -> float:
        assert self.optimizer is not None, "build_model(trainable=True) first"
        return float(self.optimizer.param_groups[0]["lr"])

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.mesh.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    # -- weights ------------------------------------------------------------------------------------------------

    def _full_tensors(self, named: Iterator[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, torch.Tensor]]:
        """Each DTensor gathered whole (a collective: every rank, same order), one at a time."""
        for name, tensor in named:
            if isinstance(tensor, DTensor):
                if tensor.device != self.device:  # CPU offload: gather on the compute device
                    tensor = tensor.to(self.device)
                tensor = tensor.full_tensor()
            yield name, tensor

    def iter_weights(self, *, dtype: torch.dtype, bucket_bytes: int) -> Iterator[WeightChunk]:
        state = self.unwrapped_model.state_dict()  # sharded: DTensors (views, no copy), HF names in a fixed order
        yield from buckets_of(self._full_tensors(iter(state.items())), dtype=dtype, bucket_bytes=bucket_bytes)

    def named_grads(self) -> Iterator[tuple[str, torch.Tensor]]:
        named = ((n, p.grad) for n, p in self.unwrapped_model.named_parameters() if p.grad is not None)
        yield from self._full_tensors(named)

    # -- memory and state ---------------------------------------------------------------------------------------

    def offload(self, *, model: bool = True, optimizer: bool = True) -> None:
        if self.device.type != "cuda" or self.config.cpu_offload:
            return  # nothing on an accelerator to free
        if model and self.model is not None:
            self.model.to("cpu")
        if optimizer and self.optimizer is not None:
            move_optimizer_state(self.optimizer, torch.device("cpu"))
        torch.cuda.empty_cache()

    def onload(self, *, model: bool = True, optimizer: bool = True) -> None:
        if self.device.type != "cuda" or self.config.cpu_offload:
            return
        if model and self.model is not None:
            self.model.to(self.device)
        if optimizer and self.optimizer is not None:
            move_optimizer_state(self.optimizer, self.device)

    def _state(self, *, with_optimizer: bool) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        state: dict[str, Any] = {"model": get_model_state_dict(self.model)}
        if with_optimizer and self.optimizer is not None:
            state["optimizer"] = get_optimizer_state_dict(self.model, self.optimizer)
            state[SCHEDULER_KEY] = self.scheduler.state_dict()
        return state

    def save_checkpoint(self, folder: str) -> None:
        """Every rank writes its shards (``torch.distributed.checkpoint``); a checkpoint loads on any number of
        ranks."""
        import torch.distributed.checkpoint as dcp

        dcp.save(self._state(with_optimizer=True), checkpoint_id=folder)

    def load_checkpoint(self, folder: str, *, load_optimizer: bool = True) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        if not os.path.isfile(os.path.join(folder, ".metadata")):
            raise UserError(f"{folder} holds no fsdp2 checkpoint (no .metadata file): it is incomplete or was "
                            "written by another strategy. Resume from another checkpoint (trainer.resume_mode="
                            "from_path trainer.resume_path=...) or with the strategy that wrote it")
        state = self._state(with_optimizer=load_optimizer)
        try:
            dcp.load(state, checkpoint_id=folder)
        except Exception as exc:  # noqa: BLE001 - any read failure means the checkpoint does not fit or is damaged
            raise UserError(f"cannot read the fsdp2 checkpoint {folder} ({type(exc).__name__}: {exc}). Resume with "
                            "the model it was written with, or from another checkpoint") from None
        set_model_state_dict(self.model, state["model"])
        if "optimizer" in state:
            set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"])
            self.scheduler.load_state_dict(state[SCHEDULER_KEY])


def _global_norm(grads: list[torch.Tensor]) -> float:
    """L2 norm over all gradients; DTensor shards reduce over their mesh (``full_tensor`` of a partial norm)."""
    if not grads:
        return 0.0
    norm = torch.nn.utils.get_total_norm(grads, norm_type=2.0)
    if isinstance(norm, DTensor):
        norm = norm.full_tensor()
    return float(norm)
