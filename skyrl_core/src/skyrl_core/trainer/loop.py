"""The trainer: one RL step over the run's actors.

Per step: sample prompts -> generate -> (handoff to training) -> algorithm batch hooks -> ref and old log-probs ->
advantages -> policy update (mini-batches = optimizer steps, micro-batches = accumulation) -> (handoff to sync)
-> weight sync to the engines -> (handoff to generation) -> metrics, samples, eval. The handoffs are
:class:`~skyrl_core.trainer.handoff.DeviceHandoff`'s, the only place where devices change hands.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from skyrl_core.algorithms.kl_reward import KLController, apply_kl_in_reward
from skyrl_core.algorithms.reduction import masked_mean, masked_whiten
from skyrl_core.algorithms.value_loss import explained_variance
from skyrl_core.config.loader import component_section
from skyrl_core.generator import GeneratorOutput
from skyrl_core.generator.types import request_seed
from skyrl_core.trainer.batch import RolloutBatch, concat_outputs
from skyrl_core.trainer.checkpoint import CheckpointWriter, ResumePoint, driver_rng_state, set_driver_rng_state
from skyrl_core.trainer.evaluation import evaluate, generate_rows, write_eval_samples
from skyrl_core.trainer.handoff import DeviceHandoff
from skyrl_core.trainer.metrics import rollout_metrics, sample_records
from skyrl_core.trainer.sampling import sample_batch
from skyrl_core.trainer.stopping import StopRequest
from skyrl_core.trainer.train_batch import TrainingBatch, split_for_workers
from skyrl_core.trainer.weight_sync import WeightSyncDriver


class Trainer:
    """Owns the actors of one run; :meth:`fit` trains until the data or ``max_training_steps`` runs out."""

    def __init__(self, *, config: Any, pm: Any, actors: Any, tokenizer: Any, train_loader: Any,
                 val_rows: list[Any], loggers: Any, checkpoints: CheckpointWriter | None = None,
                 run_dir: Path | None = None, stop: StopRequest | None = None):
        self.config = config
        self.actors, self.tokenizer, self.loader, self.val_rows = actors, tokenizer, train_loader, val_rows
        self.loggers, self.checkpoints, self.run_dir = loggers, checkpoints, run_dir
        self.stop = stop or StopRequest()
        self.global_step = 0
        self.weight_sync = WeightSyncDriver(config, actors)
        self.handoff = DeviceHandoff(
            engines=_EngineGroup(actors), groups=actors.train_groups,
            colocated=config.trainer.placement.colocate_all,
            offload_optimizer=config.trainer.policy.optimizer_config.offload_after_step,
        )
        generator_cls = pm.registry("generators")[config.generator.name]
        section = component_section(config.generator, config.generator.name, "generators", pm)
        self.generator = generator_cls(config=section, run_config=config, tokenizer=tokenizer,
                                       engine_client=actors.engine_client, plugin_manager=pm)
        preset = pm.registry("algorithms")[config.trainer.algorithm.preset] if config.trainer.algorithm.preset else None
        self.batch_hooks = preset.batch_hooks if preset else ()
        self.refill_batches = bool(preset and preset.refills(config))
        self._prompt_stream: Iterator[list[Any]] = iter(())
        self.estimator = pm.registry("advantage_estimators")[config.trainer.algorithm.advantage_estimator]
        algorithm = config.trainer.algorithm
        self.kl_controller = KLController.from_config(algorithm) if algorithm.use_kl_in_reward else None

    # -- the loop -----------------------------------------------------------------------------------------------

    def fit(self, resume: ResumePoint | None = None) -> None:
        """Train from the start, or from ``resume``; checkpoint every ``ckpt_interval`` steps and at the end."""
        trainer = self.config.trainer
        if resume is not None:
            self.restore(resume)
        elif trainer.eval_before_train and self.val_rows and trainer.eval_interval > 0:
            self.loggers.log(self.evaluate(), step=0)
        last_eval = last_save = self.global_step
        for prompts in self._remaining_batches():
            self.global_step += 1
            metrics = self.train_step(prompts)
            if trainer.eval_interval > 0 and self.val_rows and self.global_step % trainer.eval_interval == 0:
                metrics.update(self.evaluate())
                last_eval = self.global_step
            self.loggers.log(metrics, step=self.global_step)
            if trainer.ckpt_interval > 0 and self.global_step % trainer.ckpt_interval == 0:
                self.save_checkpoint()
                last_save = self.global_step
            if trainer.hf_save_interval > 0 and self.global_step % trainer.hf_save_interval == 0:
                self.export_hf()
            if self.stop.requested:
                break
        if self.stop.requested and not trainer.ckpt_on_signal:
            return
        if last_save != self.global_step:
            self.save_checkpoint()
        if self.stop.requested:
            return
        if self.val_rows and trainer.eval_interval > 0 and last_eval != self.global_step:
            self.loggers.log(self.evaluate(), step=self.global_step)

    def _remaining_batches(self) -> Any:
        """The loader's batches up to ``max_training_steps``; the limit is checked before a batch is drawn, so
        the loader's cursor (saved in checkpoints) never counts a batch that was not trained on."""
        limit = self.config.trainer.max_training_steps
        self._prompt_stream = iter(self.loader)
        while limit is None or self.global_step < limit:
            try:
                yield next(self._prompt_stream)
            except StopIteration:
                return

    # -- checkpoints --------------------------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        if self.checkpoints is None:
            return
        state = {"dataloader": self.loader.state_dict(), "rng": driver_rng_state(),
                 "kl_ctrl": self.kl_controller.state_dict() if self.kl_controller is not None else None}

        def save_workers(folder: str) -> None:
            self.handoff.to_train()  # colocated: the policy's optimizer state must be on hand to be saved
            for group in self.actors.train_groups:
                if group.role != "ref":  # the ref model never changes: it is reloaded from its path
                    group.run("save_checkpoint", folder)

        self.checkpoints.save(self.global_step, state, save_workers)

    def export_hf(self) -> None:
        """An HF model folder of the current policy under ``trainer.export_path`` (default ``<run>/exports``)."""
        root = Path(self.config.trainer.export_path or (self.run_dir or Path(".")) / "exports").expanduser()
        self.handoff.to_train()
        self.actors.policy.run("export_hf", str(root / f"global_step_{self.global_step}"))

    def restore(self, point: ResumePoint) -> None:
        """Load a checkpoint into the workers, the dataloader and the driver, then give the engines its weights."""
        trainer = self.config.trainer
        self.handoff.to_train()
        for group in self.actors.train_groups:
            if group.role != "ref":
                group.run("load_checkpoint", str(point.folder), trainer.resume_load_optimizer)
        self.loader.load_state_dict(point.state["dataloader"])
        set_driver_rng_state(point.state["rng"])
        if self.kl_controller is not None and point.state.get("kl_ctrl") is not None:
            self.kl_controller.load_state_dict(point.state["kl_ctrl"])
        self.global_step = point.global_step
        self.handoff.to_sync()
        self.weight_sync.sync()
        self.handoff.to_generate()

    def train_step(self, prompts: list[Any]) -> dict[str, float]:
        config = self.config
        timings: dict[str, float] = {}
        start = time.perf_counter()
        label = f"step {self.global_step}"
        sampled = sample_batch(
            prompts=prompts, more_prompts=self._prompt_stream, hooks=self.batch_hooks, refill=self.refill_batches,
            generate=lambda rows, round_: self._generate(rows, config.generator.sampling_params, "train", label,
                                                         request_seed(config.trainer.seed, self.global_step, round_)),
            config=config, pad_token_id=self.tokenizer.pad_token_id,
        )
        batch = sampled.batch
        timings["timing/generate"] = time.perf_counter() - start
        self.handoff.to_train()
        mark = time.perf_counter()
        metrics = self._prepare(batch)
        metrics.update(sampled.metrics)
        metrics.update(self._train(batch))
        if self.kl_controller is not None:
            self.kl_controller.update(current_kl=metrics["loss/avg_kl"], n_steps=batch.num_rows)
        timings["timing/train"] = time.perf_counter() - mark
        mark = time.perf_counter()
        self.handoff.to_sync()
        metrics.update(self.weight_sync.sync())
        self.handoff.to_generate()
        timings["timing/weight_sync"] = time.perf_counter() - mark
        timings["timing/step"] = time.perf_counter() - start
        output = concat_outputs([o for o, _ in sampled.outputs])
        metrics.update(rollout_metrics(output, [g for _, groups in sampled.outputs for g in groups], prefix=""))
        metrics.update(timings)
        tokens = float(batch.tensors["attention_mask"].sum())
        metrics["throughput/tokens_per_s"] = tokens / max(timings["timing/step"], 1e-9)
        self.loggers.log_samples(sample_records(output, self.tokenizer, config.trainer.num_logger_samples),
                                 step=self.global_step)
        return metrics

    # -- phases -------------------------------------------------------------------------------------------------

    def _generate(self, rows: list[Any], sampling: Any, phase: str, label: str, seed: int | None = None
                  ) -> GeneratorOutput:
        self.handoff.to_generate()
        return generate_rows(self.generator, rows, sampling, phase, label, seed)

    def _prepare(self, batch: RolloutBatch) -> dict[str, float]:
        """Ref and old log-probs, advantages; returns the rollout-vs-trainer log-prob metric."""
        algorithm = self.config.trainer.algorithm
        tensors = batch.tensors
        mask = tensors["loss_mask"]
        forward_inputs = TrainingBatch(sequences=tensors["sequences"], attention_mask=tensors["attention_mask"],
                                       loss_mask=mask)
        if self.actors.ref is not None:
            tensors["ref_logprobs"] = self.actors.compute_logprobs(self.actors.ref, forward_inputs)
        metrics: dict[str, float] = {}
        if not self._on_policy() or self.kl_controller is not None:
            tensors["old_logprobs"] = self.actors.compute_logprobs(self.actors.policy, forward_inputs)
            diff = (tensors["old_logprobs"] - tensors["rollout_logprobs"]).abs()
            metrics["rollout/logprob_diff_mean"] = float(masked_mean(diff, mask))
        if algorithm.zero_variance_filter:
            tensors["loss_mask"] = mask = mask * _varying_groups(tensors["token_rewards"].sum(-1), batch.group_ids)
        if self.kl_controller is not None:  # after the filter, which must see the env's rewards
            tensors["token_rewards"], kl_metrics = apply_kl_in_reward(
                token_rewards=tensors["token_rewards"], log_probs=tensors["old_logprobs"],
                ref_log_probs=tensors["ref_logprobs"], loss_mask=mask, coef=self.kl_controller.value,
                estimator=algorithm.kl_estimator_type)
            metrics.update(kl_metrics)
        values = None
        if self.actors.critic is not None:
            values = tensors["values"] = self.actors.compute_logprobs(self.actors.critic, forward_inputs,
                                                                      "compute_values") * mask
        advantages, returns = self.estimator(
            token_level_rewards=tensors["token_rewards"], response_mask=mask, index=batch.group_ids, values=values,
            config=algorithm,
        )
        if values is not None:
            tensors["returns"] = returns.float() * mask
            metrics["critic/explained_variance"] = explained_variance(values, tensors["returns"], mask)
            metrics["critic/values_mean"] = float(masked_mean(values, mask))
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
        fields = ("sequences", "attention_mask", "loss_mask", "advantages", "rollout_logprobs", "old_logprobs",
                  "ref_logprobs", "values", "returns")
        training = TrainingBatch(**{k: batch.tensors[k] for k in fields if k in batch.tensors})
        metrics: dict[str, float] = {}
        if self.actors.critic is not None:  # the critic learns first, from the values it gave before the update
            critic = TrainingBatch(sequences=training.sequences, attention_mask=training.attention_mask,
                                   loss_mask=training.loss_mask, values=training.values, returns=training.returns)
            requests = split_for_workers(critic, dp_size=self.actors.critic.dp_size,
                                         rows_per_mini_batch=trainer.critic_mini_batch_size * n, max_seq_len=None,
                                         epochs=trainer.update_epochs_per_batch)
            metrics.update(self.actors.critic.run_data_parallel("train_critic", [(r,) for r in requests])[0])
        training.values = training.returns = None
        requests = split_for_workers(training, dp_size=self.actors.policy.dp_size,
                                     rows_per_mini_batch=trainer.policy_mini_batch_size * n,
                                     max_seq_len=self._max_seq_len(), epochs=trainer.update_epochs_per_batch,
                                     on_policy=training.old_logprobs is None)
        metrics.update(self.actors.policy.run_data_parallel("train_policy", [(r,) for r in requests])[0])
        return metrics

    def _max_seq_len(self) -> int:
        algorithm, generator = self.config.trainer.algorithm, self.config.generator
        if algorithm.max_seq_len is not None:
            return algorithm.max_seq_len
        budget = generator.max_input_length or self.config.trainer.max_prompt_length
        return budget + generator.sampling_params.max_generate_length

    # -- eval ---------------------------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        metrics, first = evaluate(self.config, self.val_rows, self._generate)
        if self.run_dir is not None:
            write_eval_samples(self.run_dir, self.global_step, first, self.tokenizer,
                               self.config.trainer.num_logger_samples)
        return metrics


class _EngineGroup:
    """Every engine of the run, as the handoff sees them."""

    def __init__(self, actors: Any):
        self.actors = actors

    def sleep(self, level: int) -> None:
        self.actors.call_engines("sleep", level)

    def wake_up(self, tags: list[str] | None) -> None:
        self.actors.call_engines("wake_up", tags)


def _varying_groups(scores: torch.Tensor, group_ids: list[Any]) -> torch.Tensor:
    """``[rows, 1]``: 1 for rows whose prompt group has rewards that are not all equal."""
    by_group: dict[Any, list[float]] = {}
    for gid, score in zip(group_ids, scores.tolist(), strict=True):
        by_group.setdefault(gid, []).append(score)
    varying = {gid for gid, values in by_group.items() if max(values) - min(values) > 1e-6}
    return torch.tensor([[1.0] if gid in varying else [0.0] for gid in group_ids])
