"""The training worker (policy, ref or critic), run as a Ray actor, one per process of a worker group.

It owns a :class:`~skyrl_core.strategy.Strategy` for everything distributed (the model, the optimizer, the step)
and does the RL maths itself: log-probs, the registered policy loss, the KL and entropy terms, and the loss
reduction normalised over the whole mini-batch across micro-batches and data-parallel ranks (see
:mod:`skyrl_core.algorithms.reduction`). Weight streaming and checkpoints are in
:class:`~skyrl_core.workers.worker_state.WorkerStateMixin`, the critic's update in
:class:`~skyrl_core.workers.critic.CriticMixin`.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import torch

from skyrl_core.algorithms.kl import kl_penalty
from skyrl_core.algorithms.off_policy import off_policy_correction
from skyrl_core.algorithms.reduction import reduce_loss
from skyrl_core.strategy.base import Mesh
from skyrl_core.trainer.train_batch import MiniBatch, TrainingBatch, TrainRequest
from skyrl_core.workers.critic import CriticMixin
from skyrl_core.workers.logprobs import response_logprobs
from skyrl_core.workers.setup import load_worker_config, set_threads
from skyrl_core.workers.shared_prompt import ModelShape
from skyrl_core.workers.worker_state import WorkerStateMixin

#: The per-micro-batch sums a mini-batch's metrics are made of (all-reduced over the worker group).
_SUMS = ("policy", "kl", "entropy", "tokens", "logprob_diff")


def strategy_section(trainer: Any, role: str, pm: Any) -> Any:
    """The config section of the run's strategy for ``role``'s workers. SkyRL's per-role DeepSpeed keys
    (``trainer.<role>.deepspeed_config``, allowed only with ``trainer.strategy=deepspeed``) are merged over
    ``trainer.deepspeed.deepspeed_config``."""
    import attrs

    from skyrl_core.config.loader import component_section
    from skyrl_core.config.overrides import deep_merge

    section = component_section(trainer, trainer.strategy, "strategies", pm)
    role_keys = getattr(trainer, role).deepspeed_config
    if not role_keys:
        return section
    return attrs.evolve(section, deepspeed_config=deep_merge(section.deepspeed_config, role_keys))


class TrainWorker(WorkerStateMixin, CriticMixin):
    """One rank of the policy, ref or critic worker group."""

    def __init__(self, *, config: dict[str, Any], role: str, rank: int, world_size: int, num_threads: int):
        set_threads(num_threads)
        self.config, self.pm = load_worker_config(config)
        self.role, self.rank, self.world_size = role, rank, world_size
        self.strategy: Any = None
        self._sender: Any = None
        self._shared_prompts: ModelShape | None = None

    def locate(self) -> tuple[int, str]:
        """This actor's process id and Ray node id."""
        import ray

        return os.getpid(), ray.get_runtime_context().get_node_id()

    def free_address(self) -> tuple[str, int]:
        """An address and free port for the group's rendezvous (called on rank 0)."""
        import ray

        with socket.socket() as sock:
            sock.bind(("", 0))
            return ray.util.get_node_ip_address(), sock.getsockname()[1]

    def setup(self, master_addr: str, master_port: int) -> Mesh:
        """Build the strategy and the model of this role; returns this rank's place in the mesh."""
        trainer = self.config.trainer
        strategy_cls = self.pm.registry("strategies")[trainer.strategy]
        self.strategy = strategy_cls(config=strategy_section(trainer, self.role, self.pm), run_config=self.config)
        self.strategy.init_distributed(rank=self.rank, world_size=self.world_size, master_addr=master_addr,
                                       master_port=master_port)
        torch.manual_seed(trainer.seed + self.rank)
        policy_path = trainer.policy.model.path
        if self.role == "policy":
            self.strategy.build_model(policy_path, trainable=True, optimizer_config=trainer.policy.optimizer_config)
            self.loss_fn = self.pm.registry("policy_losses")[trainer.algorithm.policy_loss_type]
        elif self.role == "critic":
            self.strategy.build_model(trainer.critic.model.path, trainable=True,
                                      optimizer_config=trainer.critic.optimizer_config, head="value")
        else:
            self.strategy.build_model(trainer.ref.model.path or policy_path, trainable=False)
        if trainer.shared_prompt_forward and self.role != "critic":
            self._shared_prompts = ModelShape.of(self.strategy.unwrapped_model.config)
        return self.strategy.mesh

    # -- forward ------------------------------------------------------------------------------------------------

    @property
    def temperature(self) -> float:
        return self.config.generator.sampling_params.temperature or 1.0

    def compute_logprobs(self, batch: TrainingBatch) -> torch.Tensor:
        """Log-probs of the response tokens, in chunks of ``micro_forward_batch_size_per_gpu`` rows."""
        batch = batch.to(self.strategy.device)
        chunk = max(1, self.config.trainer.micro_forward_batch_size_per_gpu)
        self.strategy.set_train(False)
        out = []
        with torch.no_grad():
            for start in range(0, batch.num_rows, chunk):
                logprobs, _ = response_logprobs(
                    self.strategy.forward, batch.sequences[start : start + chunk],
                    batch.attention_mask[start : start + chunk], batch.num_response, temperature=self.temperature,
                    shared_prompts=self._shared_prompts,
                )
                out.append(logprobs.float())
        return torch.cat(out).cpu()

    # -- training -----------------------------------------------------------------------------------------------

    def train_policy(self, request: TrainRequest) -> dict[str, float]:
        """One optimizer step per mini-batch and epoch; returns metrics averaged over the optimizer steps."""
        batch = request.batch.to(self.strategy.device)
        totals: dict[str, float] = {}
        steps = 0
        for _ in range(request.epochs):
            for mini in request.mini_batches:
                for key, value in self._train_mini_batch(batch, mini, request.on_policy).items():
                    totals[key] = totals.get(key, 0.0) + value
                steps += 1
        metrics = {k: v / max(1, steps) for k, v in totals.items() if k != "lr"}
        metrics["lr"] = self._last_lr  # the learning rate the step's last optimizer step used
        return metrics

    def _train_mini_batch(self, batch: TrainingBatch, mini: MiniBatch, on_policy: bool) -> dict[str, float]:
        sums, loss_metrics = self._accumulate(batch, mini, on_policy)
        stats = self.strategy.optimizer_step(self.config.trainer.policy.optimizer_config.max_grad_norm)
        self._last_lr = stats.lr
        totals = dict(zip(_SUMS, self.strategy.all_reduce_sum(sums).tolist(), strict=True))
        tokens = max(totals["tokens"], 1.0)
        metrics = {"loss/policy": totals["policy"], "entropy": totals["entropy"] / tokens,
                   "grad_norm": stats.grad_norm, "policy/skipped_steps": float(stats.skipped)}
        if self.config.trainer.algorithm.use_kl_loss:
            metrics["loss/kl"] = totals["kl"]
        if on_policy:  # the trainer's log-probs of the rollout are measured here, not in a separate pass
            metrics["rollout/logprob_diff_mean"] = totals["logprob_diff"] / tokens
        metrics.update({f"policy/{k}": v for k, v in loss_metrics.items()})
        return metrics

    def _accumulate(self, batch: TrainingBatch, mini: MiniBatch,
                    on_policy: bool) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward and backward of one mini-batch's rows in micro-batches; gradients reduced on the last."""
        micro = max(1, self.config.trainer.micro_train_batch_size_per_gpu)
        chunks = [mini.rows[i : i + micro] for i in range(0, len(mini.rows), micro)] or [[]]
        sums = torch.zeros(len(_SUMS), dtype=torch.float64)
        loss_metrics: dict[str, float] = {}
        self.strategy.set_train(True)
        for i, rows in enumerate(chunks):
            with self.strategy.accumulate(last=i == len(chunks) - 1):
                if rows:
                    loss, parts, metrics = self._micro_loss(batch.select(rows), mini, on_policy)
                else:  # a rank with no rows still joins the gradient reduction
                    loss, parts, metrics = self._empty_loss(batch), dict.fromkeys(_SUMS, 0.0), {}
                self.strategy.backward(loss)
            sums += torch.tensor([parts[name] for name in _SUMS], dtype=torch.float64)
            for key, value in metrics.items():
                loss_metrics[key] = loss_metrics.get(key, 0.0) + value / len(chunks)
        return sums, loss_metrics

    def _empty_loss(self, batch: TrainingBatch) -> torch.Tensor:
        logprobs, _ = response_logprobs(self.strategy.forward, batch.sequences[:1], batch.attention_mask[:1],
                                        batch.num_response, temperature=self.temperature)
        return logprobs.sum() * 0.0

    def _micro_loss(self, part: TrainingBatch, mini: MiniBatch,
                    on_policy: bool) -> tuple[torch.Tensor, dict[str, float], dict[str, float]]:
        """The micro-batch's share of the mini-batch loss, the sums behind the metrics, and the loss's metrics."""
        algorithm = self.config.trainer.algorithm
        mask = part.loss_mask
        logprobs, entropy = response_logprobs(
            self.strategy.forward, part.sequences, part.attention_mask, part.num_response,
            temperature=self.temperature, with_entropy=True, entropy_grad=algorithm.use_entropy_loss,
            shared_prompts=self._shared_prompts,
        )
        old = logprobs.detach() if on_policy else part.old_logprobs
        token_losses, metrics = self.loss_fn(
            log_probs=logprobs, old_log_probs=old, advantages=part.advantages, loss_mask=mask, config=algorithm,
            rollout_log_probs=part.rollout_logprobs,
        )
        weights, keep, correction_metrics = off_policy_correction(
            old_log_probs=old, rollout_log_probs=part.rollout_logprobs, loss_mask=mask,
            config=algorithm.off_policy_correction)
        metrics.update(correction_metrics)
        # the normalisers stay the global counts of the uncorrected mask: masking a token drops its share
        reduce = {"reduction": algorithm.loss_reduction, "global_token_count": mini.global_tokens,
                  "global_seq_count": mini.global_seqs, "max_seq_len": mini.max_seq_len}
        policy_loss = reduce_loss(token_losses * weights, mask * keep, **reduce)
        loss = policy_loss
        sums = {"policy": float(policy_loss.detach()), "kl": 0.0, "tokens": float(mask.sum()),
                "entropy": float((entropy.detach() * mask).sum()), "logprob_diff": 0.0}
        if algorithm.use_kl_loss and part.ref_logprobs is not None:
            kl_loss = reduce_loss(kl_penalty(logprobs, part.ref_logprobs, algorithm.kl_estimator_type), mask, **reduce)
            loss = loss + algorithm.kl_loss_coef * kl_loss
            sums["kl"] = float(kl_loss.detach())
        if algorithm.use_entropy_loss:
            loss = loss - algorithm.entropy_loss_coef * reduce_loss(entropy, mask, **reduce)
        if part.rollout_logprobs is not None:
            sums["logprob_diff"] = float(((logprobs.detach() - part.rollout_logprobs).abs() * mask).sum())
        return loss, sums, metrics

    def accumulate_policy_grads(self, request: TrainRequest) -> None:
        """Backward of the first mini-batch without the optimizer step (gradient checks in tests)."""
        self._accumulate(request.batch.to(self.strategy.device), request.mini_batches[0], request.on_policy)

    def grads(self) -> dict[str, torch.Tensor]:
        """Current gradients with HF names (tests compare them across micro-batch sizes and worker counts)."""
        return {name: grad.detach().cpu().clone() for name, grad in self.strategy.named_grads()}
