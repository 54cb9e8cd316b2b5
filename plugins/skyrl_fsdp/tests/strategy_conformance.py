"""A strategy against plain single-process PyTorch: same data, same losses, same weights (CPU, gloo, no Ray).

:func:`reference_run` trains the tiny model for :data:`STEPS` AdamW steps in one process, the whole batch in one
forward. :func:`spawn_run` runs a registered strategy on :data:`WORLD` processes through the Strategy API only, as a
worker does: each rank takes ``ROWS / WORLD`` rows in micro-batches of one row (``accumulate(last=)``), passes its
share of the global loss sum to ``backward`` and calls ``optimizer_step``. It also measures what ``iter_weights``
keeps alive, that a step with NaN gradients is skipped, and resuming: after steps ``1..CKPT_AFTER`` and
``save_checkpoint``, a fresh strategy that loads the checkpoint and runs the remaining steps must end with the
uninterrupted run's losses and weights.

The loss of one step is the token-mean negative log-likelihood over every row of the step (``N`` target tokens):
``L = -1/N * sum_{b,t} mask[b,t+1] * log softmax(logits[b,t])[ids[b,t+1]]``; a micro-batch contributes its
partial sum divided by the global ``N``, so the sum over micro-batches and ranks is ``L``.
"""

from __future__ import annotations

import functools
import os
import socket
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.multiprocessing as mp

WORLD = 2
ROWS = 4
SEQ = 12
STEPS = 3
CKPT_AFTER = 2
#: Small enough that the first steps clip (the tiny model's gradient norms are about 1-3).
MAX_NORM = 1.0
#: Small enough that a bucket holds a few tensors of the tiny model, not all.
BUCKET_BYTES = 1 << 16


def run_config(strategy: str, *, bf16: bool = False) -> Any:
    from skyrl_core.config.schema import SkyRLConfig

    config = SkyRLConfig()
    config.trainer.strategy = strategy
    config.trainer.bf16 = bf16
    config.trainer.gradient_checkpointing = False
    return config


def optimizer_config() -> Any:
    from skyrl_core.config.schema import OptimizerConfig

    return OptimizerConfig(lr=1e-3, weight_decay=0.01, num_warmup_steps=2, max_grad_norm=MAX_NORM)


def step_batches(vocab_size: int) -> list[dict[str, torch.Tensor]]:
    """Fixed token rows per step; row 1 is left-padded by 3 tokens."""
    generator = torch.Generator().manual_seed(1234)
    batches = []
    for _ in range(STEPS):
        ids = torch.randint(3, vocab_size, (ROWS, SEQ), generator=generator)
        mask = torch.ones(ROWS, SEQ, dtype=torch.long)
        mask[1, :3] = 0
        ids[1, :3] = 0
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        batches.append({"input_ids": ids, "attention_mask": mask, "position_ids": position_ids})
    return batches


def loss_share(logits: torch.Tensor, batch: dict[str, torch.Tensor], total_tokens: int) -> torch.Tensor:
    """This micro-batch's part of the step loss ``L`` (module doc)."""
    targets, mask = batch["input_ids"][:, 1:], batch["attention_mask"][:, 1:].float()
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -(logp * mask).sum() / total_tokens


def target_tokens(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["attention_mask"][:, 1:].sum())


def reference_run(model_path: str, device: str = "cpu") -> dict[str, Any]:
    """Plain PyTorch in this process: losses, gradient norms and final weights."""
    from skyrl_core.strategy.common import build_optimizer_and_scheduler, clip_and_step, load_hf_model

    torch.manual_seed(0)
    model = load_hf_model(model_path, run_config("reference"), trainable=True, device=device)
    optimizer, scheduler = build_optimizer_and_scheduler(model, optimizer_config())
    losses, norms = [], []
    for batch in step_batches(model.config.vocab_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = loss_share(model(**batch).logits, batch, target_tokens(batch))
        loss.backward()
        losses.append(float(loss.detach()))
        norms.append(clip_and_step(list(model.parameters()), optimizer, scheduler, MAX_NORM).grad_norm)
    weights = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}
    return {"losses": losses, "grad_norms": norms, "weights": weights}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_run(strategy: str, sections: list[Any], model_path: str, out_dir: str, *, world: int = WORLD,
              bf16: bool = False) -> list[dict[str, Any]]:
    """Run :func:`_rank_main` for each config section in turn, in one group of ``world`` processes (starting
    processes is the slow part); rank 0's results, one per section. With CUDA, rank ``r`` uses GPU ``r``."""
    port = _free_port()
    mp.start_processes(_rank_main, args=(strategy, sections, model_path, out_dir, port, world, bf16), nprocs=world,
                       start_method="spawn")
    return [torch.load(os.path.join(out_dir, str(i), "rank0.pt"), weights_only=False) for i in range(len(sections))]


def _make_strategy(name: str, section: Any, rank: int, port: int, world: int, bf16: bool) -> Any:
    from skyrl_core.plugins import PluginManager

    strategy_cls = PluginManager().registry("strategies")[name]
    strategy = strategy_cls(config=section, run_config=run_config(name, bf16=bf16))
    strategy.init_distributed(rank=rank, world_size=world, master_addr="127.0.0.1", master_port=port)
    return strategy


def train_steps(strategy: Any, batches: list[dict[str, torch.Tensor]]) -> tuple[list[float], list[float]]:
    """Steps through the Strategy API as a worker runs them: this rank's rows, one row per micro-batch."""
    rows = ROWS // strategy.mesh.dp_size
    losses, norms = [], []
    strategy.set_train(True)
    for batch in batches:
        total = target_tokens(batch)
        mine = {k: v[strategy.mesh.dp_rank * rows:(strategy.mesh.dp_rank + 1) * rows] for k, v in batch.items()}
        step_loss = torch.zeros((), device=strategy.device)
        for i in range(rows):
            micro = {k: v[i:i + 1].to(strategy.device) for k, v in mine.items()}
            with strategy.accumulate(last=i == rows - 1):
                loss = loss_share(strategy.forward(**micro).logits, micro, total)
                strategy.backward(loss)
            step_loss += loss.detach()
        losses.append(float(strategy.all_reduce_sum(step_loss)))
        norms.append(strategy.optimizer_step(MAX_NORM).grad_norm)
    return losses, norms


def collect_weights(strategy: Any, bucket_bytes: int = BUCKET_BYTES) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """``iter_weights`` in fp32 on every rank, consumed as a sender would (each chunk dropped before the next).

    Returns the weights and memory figures: ``peak_alive_bytes``, the peak bytes of yielded tensors still alive
    when a chunk arrives (weak references: what the strategy itself still holds of earlier chunks counts),
    ``largest_bytes`` (the largest tensor) and, on CUDA, ``peak_device_extra_bytes`` (the allocator's peak during
    the iteration above what was allocated before it).
    """
    weights: dict[str, torch.Tensor] = {}
    alive: dict[int, int] = {}
    peak = largest = 0
    cuda = strategy.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    for index, chunk in enumerate(strategy.iter_weights(dtype=torch.float32, bucket_bytes=bucket_bytes)):
        for position, tensor in enumerate(chunk.tensors):
            key = index * 10_000 + position
            alive[key] = tensor.numel() * tensor.element_size()
            weakref.finalize(tensor, alive.pop, key, None)
            largest = max(largest, alive[key])
        peak = max(peak, sum(alive.values()))
        for name, tensor in zip(chunk.names, chunk.tensors):
            weights[name] = tensor.detach().cpu().clone()
        del chunk, tensor
    memory = {"peak_alive_bytes": peak, "largest_bytes": largest}
    if cuda:
        memory["peak_device_extra_bytes"] = torch.cuda.max_memory_allocated() - before
    return weights, memory


def nan_step(strategy: Any, batch: dict[str, torch.Tensor]) -> Any:
    """One optimizer step whose loss (so every gradient) is NaN: it must be skipped."""
    rows = ROWS // strategy.mesh.dp_size
    micro = {k: v[strategy.mesh.dp_rank * rows:strategy.mesh.dp_rank * rows + 1].to(strategy.device)
             for k, v in batch.items()}
    with strategy.accumulate(last=True):
        loss = loss_share(strategy.forward(**micro).logits, micro, target_tokens(batch))
        strategy.backward(loss * float("nan"))
    return strategy.optimizer_step(MAX_NORM)


def _rank_main(rank: int, name: str, sections: list[Any], model_path: str, out_dir: str, port: int, world: int,
               bf16: bool) -> None:
    torch.set_num_threads(1)
    if torch.cuda.is_available():
        torch.cuda.set_device(rank)
    for index, section in enumerate(sections):
        make = functools.partial(_make_strategy, name, section, rank, port, world, bf16)
        _run_section(rank, make, model_path, os.path.join(out_dir, str(index)))


def _run_section(rank: int, make: Callable[[], Any], model_path: str, out_dir: str) -> None:
    strategy = make()
    torch.manual_seed(0)
    strategy.build_model(model_path, trainable=True, optimizer_config=optimizer_config())
    batches = step_batches(strategy.unwrapped_model.config.vocab_size)
    ckpt = os.path.join(out_dir, "ckpt")
    losses, norms = train_steps(strategy, batches[:CKPT_AFTER])
    if rank == 0:
        os.makedirs(ckpt)
    strategy.all_reduce_sum(torch.zeros(1, device=strategy.device))  # the folder exists before any rank writes
    strategy.save_checkpoint(ckpt)
    more_losses, more_norms = train_steps(strategy, batches[CKPT_AFTER:])
    weights, memory = collect_weights(strategy)
    total_bytes = sum(t.numel() * t.element_size() for t in weights.values())
    skipped = nan_step(strategy, batches[-1])
    weights_after_nan, _ = collect_weights(strategy)
    kept = all((weights_after_nan[k] == v).all() for k, v in weights.items())

    resumed = make()
    resumed.build_model(model_path, trainable=True, optimizer_config=optimizer_config())
    resumed.load_checkpoint(ckpt)
    resumed_lr = resumed.current_lr()
    resumed_losses, _ = train_steps(resumed, batches[CKPT_AFTER:])
    resumed_weights, _ = collect_weights(resumed)
    if rank == 0:
        torch.save({"losses": losses + more_losses, "grad_norms": norms + more_norms, "weights": weights,
                    **memory, "model_bytes": total_bytes, "nan_step": skipped, "nan_step_kept_weights": kept,
                    "resumed_losses": resumed_losses, "resumed_weights": resumed_weights,
                    "resumed_lr": resumed_lr}, os.path.join(out_dir, "rank0.pt"))


def relative_error(a: torch.Tensor | float, b: torch.Tensor | float) -> float:
    """``|a - b| / |b|`` (L2 norms for tensors; 0 when both are zero)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    denominator = float(b.norm())
    return float((a - b).norm()) / denominator if denominator else float((a - b).norm())


def assert_matches_reference(result: dict[str, Any], reference: dict[str, Any], *, rtol: float = 1e-5) -> None:
    """Losses, gradient norms and final weights within ``rtol`` relative; the same parameter names.

    Exception: the attention key bias. Its gradient is zero in exact arithmetic (softmax is unchanged when the same
    ``q . b`` is added to every score of a query), so what backward computes for it is rounding noise, which AdamW
    turns into updates of up to ``lr`` per step either way. It is checked to stay within that bound."""
    assert sorted(result["weights"]) == sorted(reference["weights"])
    for step, (got, want) in enumerate(zip(result["losses"], reference["losses"], strict=True)):
        assert relative_error(got, want) <= rtol, f"loss of step {step + 1}: {got} vs {want}"
    for step, (got, want) in enumerate(zip(result["grad_norms"], reference["grad_norms"], strict=True)):
        assert relative_error(got, want) <= rtol, f"grad norm of step {step + 1}: {got} vs {want}"
    noise_bound = 2 * optimizer_config().lr * STEPS
    for name, want in reference["weights"].items():
        if name.endswith("k_proj.bias"):
            assert float((result["weights"][name] - want).abs().max()) <= noise_bound, name
            continue
        error = relative_error(result["weights"][name], want)
        assert error <= rtol, f"{name}: relative error {error:.2e}"
