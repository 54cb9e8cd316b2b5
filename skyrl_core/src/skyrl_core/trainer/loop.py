"""The trainer: the step of DESIGN §5 over the actors of §6.

Per step: sample prompts -> generate (engines awake) -> engines sleep when colocated -> algorithm batch hooks ->
ref and old log-probs -> advantages -> policy update (mini-batches = optimizer steps, micro-batches =
accumulation) -> weight sync to the engines -> metrics, samples, eval.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from skyrl_core.algorithms.reduction import masked_mean, masked_whiten
from skyrl_core.generator import GeneratorInput, GeneratorOutput, sampling_params_from_config
from skyrl_core.trainer.batch import RolloutBatch, build_batch, split_for_workers
from skyrl_core.trainer.metrics import rollout_metrics, sample_records
from skyrl_core.trainer.progress import generation_progress
from skyrl_core.trainer.weight_sync import WeightSyncDriver


class Trainer:
    """Owns the actors of one run; :meth:`fit` trains until the data or ``max_training_steps`` runs out."""

    def __init__(self, *, config: Any, pm: Any, actors: Any, tokenizer: Any, train_loader: Any,
                 val_rows: list[Any], loggers: Any):
        self.config = config
        self.actors, self.tokenizer, self.loader, self.val_rows = actors, tokenizer, train_loader, val_rows
        self.loggers = loggers
        self.global_step = 0
        self.weight_sync = WeightSyncDriver(config, actors)
        generator_cls = pm.registry("generators")[config.generator.name]
        self.generator = generator_cls(config=config, tokenizer=tokenizer, engine_client=actors.engine_client,
                                       plugin_manager=pm)
        preset = config.trainer.algorithm.preset
        self.batch_hooks = pm.registry("algorithms")[preset].batch_hooks if preset else ()
        self.estimator = pm.registry("advantage_estimators")[config.trainer.algorithm.advantage_estimator]

    # -- the loop -----------------------------------------------------------------------------------------------

    def fit(self) -> None:
        trainer = self.config.trainer
        if trainer.eval_before_train and self.val_rows and trainer.eval_interval > 0:
            self.loggers.log(self.evaluate(), step=0)
        last_eval = 0
        for prompts in self.loader:
            self.global_step += 1
            metrics = self.train_step(prompts)
            if trainer.eval_interval > 0 and self.val_rows and self.global_step % trainer.eval_interval == 0:
                metrics.update(self.evaluate())
                last_eval = self.global_step
            self.loggers.log(metrics, step=self.global_step)
            if trainer.max_training_steps is not None and self.global_step >= trainer.max_training_steps:
                break
        if self.val_rows and trainer.eval_interval > 0 and last_eval != self.global_step and self.global_step > 0:
            self.loggers.log(self.evaluate(), step=self.global_step)

    def train_step(self, prompts: list[Any]) -> dict[str, float]:
        config = self.config
        n = config.generator.n_samples_per_prompt
        timings: dict[str, float] = {}
        start = time.perf_counter()
        rows = [row for row in prompts for _ in range(n)]
        output = self._generate(rows, config.generator.sampling_params, "train", f"step {self.global_step}")
        timings["timing/generate"] = time.perf_counter() - start
        self.actors.sleep_engines()
        batch = build_batch(output, [r.index for r in rows], self.tokenizer.pad_token_id)
        for hook in self.batch_hooks:
            batch = hook(batch, config)
        mark = time.perf_counter()
        metrics = self._prepare(batch)
        metrics.update(self._train(batch))
        timings["timing/train"] = time.perf_counter() - mark
        mark = time.perf_counter()
        self.weight_sync.sync()
        timings["timing/weight_sync"] = time.perf_counter() - mark
        timings["timing/step"] = time.perf_counter() - start
        metrics.update(rollout_metrics(output, batch.group_ids, prefix=""))
        metrics.update(timings)
        tokens = float(batch.tensors["attention_mask"].sum())
        metrics["throughput/tokens_per_s"] = tokens / max(timings["timing/step"], 1e-9)
        self.loggers.log_samples(sample_records(output, self.tokenizer, config.trainer.num_logger_samples),
                                 step=self.global_step)
        return metrics

    # -- phases -------------------------------------------------------------------------------------------------

    def _generate(self, rows: list[Any], sampling: Any, phase: str, label: str) -> GeneratorOutput:
        """One trajectory per row (prompt rows already repeated), on awake engines, with a progress bar."""
        self.actors.wake_engines()
        with generation_progress(self.generator, f"{label}: generating"):
            return self.generator.generate(GeneratorInput(
                prompts=[r.prompt for r in rows], env_classes=[r.env_class for r in rows],
                env_extras=[r.extras for r in rows], group_ids=[r.index for r in rows],
                sampling=sampling_params_from_config(sampling), phase=phase,
            ))

    def _prepare(self, batch: RolloutBatch) -> dict[str, float]:
        """Ref and old log-probs, advantages; returns the rollout-vs-trainer log-prob metric."""
        algorithm = self.config.trainer.algorithm
        tensors = batch.tensors
        mask = tensors["loss_mask"]
        forward_inputs = {k: tensors[k] for k in ("sequences", "attention_mask", "loss_mask")}
        if self.actors.ref is not None:
            tensors["ref_logprobs"] = self.actors.compute_logprobs(self.actors.ref, forward_inputs)
        metrics: dict[str, float] = {}
        if not self._on_policy():
            tensors["old_logprobs"] = self.actors.compute_logprobs(self.actors.policy, forward_inputs)
            diff = (tensors["old_logprobs"] - tensors["rollout_logprobs"]).abs()
            metrics["rollout/logprob_diff_mean"] = float(masked_mean(diff, mask))
        if algorithm.zero_variance_filter:
            tensors["loss_mask"] = mask = mask * _varying_groups(tensors["token_rewards"].sum(-1), batch.group_ids)
        advantages, _returns = self.estimator(
            token_level_rewards=tensors["token_rewards"], response_mask=mask, index=batch.group_ids, values=None,
            config=algorithm,
        )
        if algorithm.advantage_batch_normalize:
            advantages = masked_whiten(advantages, mask)
        tensors["advantages"] = advantages.float() * mask
        metrics["advantages/mean"] = float(masked_mean(tensors["advantages"], mask))
        return metrics

    def _on_policy(self) -> bool:
        """One optimizer step per batch: the policy that trains is the one that sampled, so the old log-probs are
        the training forward's own (detached) and no separate forward pass is needed."""
        trainer = self.config.trainer
        return trainer.update_epochs_per_batch == 1 and trainer.policy_mini_batch_size == trainer.train_batch_size

    def _train(self, batch: RolloutBatch) -> dict[str, float]:
        trainer = self.config.trainer
        n = self.config.generator.n_samples_per_prompt
        keep = ("sequences", "attention_mask", "loss_mask", "old_logprobs", "advantages", "rollout_logprobs",
                "ref_logprobs")
        view = RolloutBatch(tensors={k: v for k, v in batch.tensors.items() if k in keep}, group_ids=batch.group_ids,
                            output=batch.output)
        shards = split_for_workers(view, world_size=self.actors.policy.world_size,
                                   rows_per_mini_batch=trainer.policy_mini_batch_size * n,
                                   max_seq_len=self._max_seq_len())
        results = self.actors.policy.run_each("train_policy", shards)
        return results[0]

    def _max_seq_len(self) -> int:
        algorithm, generator = self.config.trainer.algorithm, self.config.generator
        if algorithm.max_seq_len is not None:
            return algorithm.max_seq_len
        budget = generator.max_input_length or self.config.trainer.max_prompt_length
        return budget + generator.sampling_params.max_generate_length

    # -- eval ---------------------------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        generator = self.config.generator
        size = max(1, self.config.trainer.eval_batch_size)
        k = generator.eval_n_samples_per_prompt
        outputs, groups = [], []
        for start in range(0, len(self.val_rows), size):
            rows = [row for row in self.val_rows[start : start + size] for _ in range(k)]
            outputs.append(self._generate(rows, generator.eval_sampling_params, "eval", "eval"))
            groups.append([r.index for r in rows])
        metrics: dict[str, float] = {}
        weights = [len(g) for g in groups]
        for output, group in zip(outputs, groups, strict=True):
            for key, value in rollout_metrics(output, group, prefix="eval/").items():
                metrics[key] = metrics.get(key, 0.0) + value * len(group) / sum(weights)
        return metrics


def _varying_groups(scores: torch.Tensor, group_ids: list[Any]) -> torch.Tensor:
    """``[rows, 1]``: 1 for rows whose prompt group has rewards that are not all equal."""
    by_group: dict[Any, list[float]] = {}
    for gid, score in zip(group_ids, scores.tolist(), strict=True):
        by_group.setdefault(gid, []).append(score)
    varying = {gid for gid, values in by_group.items() if max(values) - min(values) > 1e-6}
    return torch.tensor([[1.0] if gid in varying else [0.0] for gid in group_ids])
