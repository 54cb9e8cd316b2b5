"""One step's training batch: generate, run the preset's batch hooks, and, for presets that filter prompt groups,
generate again until the batch is full.

A preset with ``refill_batches=True`` (dynamic sampling, which drops groups whose rewards are all equal, is the
example) has batch hooks that may drop whole prompt groups. The trainer then draws the next prompts from the
dataloader, generates, runs the hooks on the new rows, and appends the kept groups, until
``trainer.train_batch_size`` groups are kept; extra groups are dropped from the end. After
``trainer.algorithm.dynamic_sampling.max_sample_batches`` generation rounds (``<= 0``: unlimited) without a full
batch, the run stops with a message saying what happened. When the data runs out first, the step trains on the
groups it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from skyrl_core.errors import UserError
from skyrl_core.generator import GeneratorOutput
from skyrl_core.trainer.batch import RolloutBatch, build_batch

log = logging.getLogger("skyrl")


@attrs.define(kw_only=True)
class SampledBatch:
    """The batch to train on, every round's raw output (for rollout metrics), and the sampling metrics."""

    batch: RolloutBatch
    outputs: list[tuple[GeneratorOutput, list[Any]]]
    metrics: dict[str, float]


def sample_batch(*, prompts: list[Any], more_prompts: Iterator[list[Any]], generate: Callable[[list[Any]], Any],
                 hooks: tuple[Callable[..., Any], ...], refill: bool, config: Any, pad_token_id: int) -> SampledBatch:
    """Generate for ``prompts`` (each repeated ``n_samples_per_prompt`` times) and apply ``hooks``; with
    ``refill``, keep drawing from ``more_prompts`` until the batch holds ``train_batch_size`` groups."""
    n = config.generator.n_samples_per_prompt
    target = config.trainer.train_batch_size
    max_rounds = config.trainer.algorithm.dynamic_sampling.max_sample_batches
    kept: list[RolloutBatch] = []
    outputs: list[tuple[GeneratorOutput, list[Any]]] = []
    hook_metrics: dict[str, float] = {}
    rounds = 0
    while True:
        rounds += 1
        rows = [row for row in prompts for _ in range(n)]
        output = generate(rows)
        groups = [r.index for r in rows]
        outputs.append((output, groups))
        batch = build_batch(output, groups, pad_token_id)
        for hook in hooks:
            batch = hook(batch, config)
        for key, value in batch.metrics.items():
            hook_metrics[key] = hook_metrics.get(key, 0.0) + float(value)
        if batch.num_rows:
            kept.append(batch)
        have = sum(b.num_groups for b in kept)
        if not refill or have >= target:
            break
        if 0 < max_rounds <= rounds:
            raise UserError(
                f"dynamic sampling kept {have} of the {target} prompt groups a step needs after {rounds} generation "
                f"rounds (trainer.algorithm.dynamic_sampling.max_sample_batches={max_rounds}): most groups got "
                "rewards that were all equal. Raise max_sample_batches (<= 0: unlimited), raise "
                "generator.n_samples_per_prompt, or use easier or harder data"
            )
        try:
            prompts = next(more_prompts)
        except StopIteration:
            log.warning("dynamic sampling: the data ran out with %d of %d groups kept; training on them", have,
                        target)
            break
    if not kept:
        raise UserError("every prompt group of this step was filtered out and no data is left to draw from; "
                        "check the algorithm's filters (trainer.algorithm.dynamic_sampling)")
    batch = RolloutBatch.concat(kept, pad_token_id)
    metrics = dict(hook_metrics)
    if refill:
        generated = sum(len(dict.fromkeys(groups)) for _, groups in outputs)
        metrics.update({"dynamic_sampling/rounds": float(rounds),
                        "dynamic_sampling/kept_fraction": batch.num_groups / max(1, generated)})
        if batch.num_groups > target:
            allowed = set(list(dict.fromkeys(batch.group_ids))[:target])
            batch = batch.select_groups(lambda gid: gid in allowed)
        metrics["dynamic_sampling/kept_groups"] = float(batch.num_groups)
    return SampledBatch(batch=batch, outputs=outputs, metrics=metrics)
