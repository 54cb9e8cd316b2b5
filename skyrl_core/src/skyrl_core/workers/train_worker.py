"""The training worker (policy or ref), run as a Ray actor, one per process of a worker group.

It owns a :class:`~skyrl_core.strategy.Strategy` for everything distributed and does the RL maths itself:
log-probs, the registered policy loss, the KL and entropy terms, and the loss reduction normalised over the whole
mini-batch across micro-batches and workers (see :mod:`skyrl_core.algorithms.reduction`).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import torch

from skyrl_core.algorithms.kl import kl_penalty
from skyrl_core.algorithms.reduction import reduce_loss
from skyrl_core.workers.logprobs import response_logprobs
from skyrl_core.workers.setup import load_worker_config, set_threads

Batch = dict[str, torch.Tensor]
#: The per-micro-batch sums a mini-batch's metrics are made of (all-reduced over the worker group).
_SUMS = ("policy", "kl", "entropy", "tokens", "logprob_diff")


class TrainWorker:
    """One rank of the policy or ref worker group."""

    def __init__(self, *, config: dict[str, Any], role: str, rank: int, world_size: int, num_threads: int):
        set_threads(num_threads)
        self.config, self.pm = load_worker_config(config)
        self.role, self.rank, self.world_size = role, rank, world_size
        self.strategy: Any = None
        self._sync: Any = None

    def free_address(self) -> tuple[str, int]:
        """An address and free port for the group's rendezvous (called on rank 0)."""
        import ray

        with socket.socket() as sock:
            sock.bind(("", 0))
            return ray.util.get_node_ip_address(), sock.getsockname()[1]

    def setup(self, master_addr: str, master_port: int) -> None:
        from skyrl_core.config.loader import component_section

        trainer = self.config.trainer
        name = trainer.strategy
        strategy_cls = self.pm.registry("strategies")[name]
        section = component_section(trainer, name, "strategies", self.pm)
        self.strategy = strategy_cls(config=self.config, section=section)
        self.strategy.init_distributed(
            rank=self.rank, world_size=self.world_size, master_addr=master_addr, master_port=master_port
        )
        torch.manual_seed(trainer.seed + self.rank)
        policy_path = trainer.policy.model.path
        if self.role == "policy":
            self.strategy.build_model(policy_path, trainable=True, optimizer_config=trainer.policy.optimizer_config)
            self.loss_fn = self.pm.registry("policy_losses")[trainer.algorithm.policy_loss_type]
        else:
            self.strategy.build_model(trainer.ref.model.path or policy_path, trainable=False)

    # -- forward ------------------------------------------------------------------------------------------------

    @property
    def temperature(self) -> float:
        return self.config.generator.sampling_params.temperature or 1.0

    def _to_device(self, batch: Batch) -> Batch:
        return {k: v.to(self.strategy.device) for k, v in batch.items()}

    def compute_logprobs(self, batch: Batch) -> torch.Tensor:
        """Log-probs of the response tokens, in chunks of ``micro_forward_batch_size_per_gpu``."""
        batch = self._to_device(batch)
        model = self.strategy.unwrapped_model
        was_training = model.training
        model.eval()
        chunk = max(1, self.config.trainer.micro_forward_batch_size_per_gpu)
        out = []
        with torch.no_grad():
            for start in range(0, batch["sequences"].shape[0], chunk):
                logprobs, _ = response_logprobs(
                    model,
                    batch["sequences"][start : start + chunk],
                    batch["attention_mask"][start : start + chunk],
                    batch["loss_mask"].shape[1],
                    temperature=self.temperature,
                    bf16=self.config.trainer.bf16,
                )
                out.append(logprobs)
        model.train(was_training)
        return torch.cat(out).cpu()

    # -- training -----------------------------------------------------------------------------------------------

    def train_policy(self, batch: Batch, mini_batches: list[dict[str, Any]]) -> dict[str, float]:
        """One optimizer step per mini-batch.

        ``mini_batches[i]`` holds ``rows`` (this worker's row indices) and the mini-batch's ``global_tokens`` and
        ``global_seqs`` over all workers, the normalisers of the loss reduction.
        """
        batch = self._to_device(batch)
        totals: dict[str, float] = {}
        for _ in range(self.config.trainer.update_epochs_per_batch):
            for spec in mini_batches:
                for key, value in self._train_mini_batch(batch, spec).items():
                    totals[key] = totals.get(key, 0.0) + value
        steps = max(1, len(mini_batches) * self.config.trainer.update_epochs_per_batch)
        metrics = {k: v / steps for k, v in totals.items()}
        metrics["lr"] = self.strategy.current_lr()
        return metrics

    def _train_mini_batch(self, batch: Batch, spec: dict[str, Any]) -> dict[str, float]:
        sums, loss_metrics = self._accumulate(batch, spec)
        grad_norm = self.strategy.clip_grad_norm(self.config.trainer.policy.optimizer_config.max_grad_norm)
        self.strategy.optimizer_step()
        totals = dict(zip(_SUMS, self.strategy.all_reduce_sum(sums).tolist(), strict=True))
        tokens = max(totals["tokens"], 1.0)
        metrics = {"loss/policy": totals["policy"], "entropy": totals["entropy"] / tokens, "grad_norm": grad_norm}
        if self.config.trainer.algorithm.use_kl_loss:
            metrics["loss/kl"] = totals["kl"]
        if "old_logprobs" not in batch:  # on-policy: the trainer's log-probs are measured here, not before
            metrics["rollout/logprob_diff_mean"] = totals["logprob_diff"] / tokens
        metrics.update({f"policy/{k}": v for k, v in loss_metrics.items()})
        return metrics

    def _accumulate(self, batch: Batch, spec: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward and backward of one mini-batch's rows in micro-batches; gradients all-reduced on the last."""
        rows: list[int] = spec["rows"]
        micro = max(1, self.config.trainer.micro_train_batch_size_per_gpu)
        chunks = [rows[i : i + micro] for i in range(0, len(rows), micro)]
        sums = torch.zeros(len(_SUMS), dtype=torch.float64)
        loss_metrics: dict[str, float] = {}
        self.strategy.model.train()
        for i, chunk in enumerate(chunks):
            index = torch.tensor(chunk, device=self.strategy.device)
            part = {k: v.index_select(0, index) for k, v in batch.items()}
            with self.strategy.no_sync() if i < len(chunks) - 1 else contextlib.nullcontext():
                loss, parts, metrics = self._micro_loss(part, spec, self.config.trainer.algorithm)
                # DDP averages gradients over ranks; the reduction already divides by global counts.
                self.strategy.backward(loss * self.world_size)
            sums += torch.tensor([parts[name] for name in _SUMS], dtype=torch.float64)
            for key, value in metrics.items():
                loss_metrics[key] = loss_metrics.get(key, 0.0) + value / len(chunks)
        return sums, loss_metrics

    def _micro_loss(
        self, part: Batch, spec: dict[str, Any], algorithm: Any
    ) -> tuple[torch.Tensor, dict[str, float], dict[str, float]]:
        """The micro-batch's share of the mini-batch loss, the sums behind the metrics, and the loss's metrics.

        Without ``old_logprobs`` in the batch (one optimizer step per batch: the data is on-policy), the old
        log-probs are the current ones detached, which saves a forward pass over the batch.
        """
        mask = part["loss_mask"]
        logprobs, entropy = response_logprobs(
            self.strategy.model, part["sequences"], part["attention_mask"], mask.shape[1],
            temperature=self.temperature, bf16=self.config.trainer.bf16, with_entropy=True,
            entropy_grad=algorithm.use_entropy_loss,
        )
        old = part["old_logprobs"] if "old_logprobs" in part else logprobs.detach()
        token_losses, metrics = self.loss_fn(
            log_probs=logprobs, old_log_probs=old, advantages=part["advantages"], loss_mask=mask,
            config=algorithm, rollout_log_probs=part.get("rollout_logprobs"),
        )
        reduce = {
            "reduction": algorithm.loss_reduction,
            "global_token_count": spec["global_tokens"],
            "global_seq_count": spec["global_seqs"],
            "max_seq_len": spec.get("max_seq_len"),
        }
        policy_loss = reduce_loss(token_losses, mask, **reduce)
        loss = policy_loss
        sums = {"policy": float(policy_loss.detach()), "kl": 0.0, "tokens": float(mask.sum()),
                "entropy": float((entropy.detach() * mask).sum()), "logprob_diff": 0.0}
        if algorithm.use_kl_loss and "ref_logprobs" in part:
            kl = kl_penalty(logprobs, part["ref_logprobs"], algorithm.kl_estimator_type)
            kl_loss = reduce_loss(kl, mask, **reduce)
            loss = loss + algorithm.kl_loss_coef * kl_loss
            sums["kl"] = float(kl_loss.detach())
        if algorithm.use_entropy_loss:
            loss = loss - algorithm.entropy_loss_coef * reduce_loss(entropy, mask, **reduce)
        if "rollout_logprobs" in part:
            sums["logprob_diff"] = float(((logprobs.detach() - part["rollout_logprobs"]).abs() * mask).sum())
        return loss, sums, metrics

    # -- weights ------------------------------------------------------------------------------------------------

    def init_weight_sync(self, backend: str, master_addr: str, master_port: int, num_receivers: int) -> None:
        if self.rank == 0:
            from skyrl_core.config.loader import component_section

            section = component_section(self.config.generator, backend, "weight_sync_backends", self.pm)
            self._sync = self.pm.registry("weight_sync_backends")[backend](section=section)
            self._sync.init_sender(master_addr=master_addr, master_port=master_port, num_receivers=num_receivers)

    def send_weights(self, specs: list[tuple[str, tuple[int, ...], str]]) -> Any:
        """Every rank takes part in gathering the full weights; rank 0 sends them."""
        tensors = dict(self.strategy.full_state_dict())
        if self.rank != 0:
            return None
        return self._sync.send(tensors, specs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.strategy.full_state_dict()}

    def grads(self) -> dict[str, torch.Tensor]:
        """Current gradients (tests compare them across micro-batch sizes and worker counts)."""
        return {n: p.grad.detach().cpu().clone() for n, p in self.strategy.unwrapped_model.named_parameters()
                if p.grad is not None}

    def accumulate_policy_grads(self, batch: Batch, spec: dict[str, Any]) -> None:
        """Backward of one mini-batch without the optimizer step (gradient checks)."""
        self._accumulate(self._to_device(batch), spec)

    def offload(self) -> None:
        self.strategy.offload()

    def backload(self) -> None:
        self.strategy.backload()

