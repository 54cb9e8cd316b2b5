"""Evaluation: every validation prompt ``eval_n_samples_per_prompt`` times with ``eval_sampling_params``, the
``eval/...`` metrics, and sample records; shared by in-run eval and ``skyrl eval``.

Metrics: the rollout metrics with the ``eval/`` prefix (``eval/reward/mean``, ``eval/pass_at_n``, ...), weighted
over eval batches by their number of trajectories, plus ``eval/pass_at_<k>`` (``k = eval_n_samples_per_prompt``:
the fraction of prompts with at least one positive reward among their k samples) and per data source
``eval/<data_source>/reward/mean``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skyrl_core.generator import GeneratorInput, GeneratorOutput, sampling_params_from_config
from skyrl_core.trainer.metrics import pass_at_n, rollout_metrics, sample_records
from skyrl_core.trainer.progress import generation_progress

#: ``generate(rows, sampling_config, phase, label) -> GeneratorOutput``
GenerateFn = Callable[[list[Any], Any, str, str], GeneratorOutput]


def generate_rows(generator: Any, rows: list[Any], sampling: Any, phase: str, label: str) -> GeneratorOutput:
    """One trajectory per row (prompt rows already repeated), with a progress bar; engines must be awake."""
    with generation_progress(generator, f"{label}: generating"):
        return generator.generate(GeneratorInput(
            prompts=[r.prompt for r in rows], env_classes=[r.env_class for r in rows],
            env_extras=[r.extras for r in rows], group_ids=[r.index for r in rows],
            sampling=sampling_params_from_config(sampling), phase=phase,
        ))


def evaluate(config: Any, val_rows: list[Any], generate: GenerateFn) -> tuple[dict[str, float], GeneratorOutput | None]:
    """The eval metrics and the first eval batch's output (for sample records)."""
    generator = config.generator
    size = max(1, config.trainer.eval_batch_size)
    k = generator.eval_n_samples_per_prompt
    metrics: dict[str, float] = {}
    total = len(val_rows) * k
    first: GeneratorOutput | None = None
    by_source: dict[str, list[float]] = {}
    rewards: list[float] = []
    groups: list[Any] = []
    for start in range(0, len(val_rows), size):
        rows = [row for row in val_rows[start : start + size] for _ in range(k)]
        output = generate(rows, generator.eval_sampling_params, "eval", "eval")
        first = first or output
        group = [r.index for r in rows]
        for key, value in rollout_metrics(output, group, prefix="eval/").items():
            metrics[key] = metrics.get(key, 0.0) + value * len(rows) / max(1, total)
        for row, reward in zip(rows, output.rewards, strict=True):
            by_source.setdefault(str(row.extras.get("data_source") or "unknown"), []).append(reward)
        rewards += output.rewards
        groups += group
    if rewards:
        metrics[f"eval/pass_at_{k}"] = pass_at_n(rewards, groups)
    for source, values in by_source.items():
        metrics[f"eval/{source}/reward/mean"] = sum(values) / len(values)
    return metrics, first


def write_eval_samples(run_dir: Path, step: int, output: GeneratorOutput | None, tokenizer: Any,
                       limit: int) -> None:
    """``samples/eval_step_<N>.jsonl``: the first ``limit`` eval trajectories."""
    if output is None or limit <= 0:
        return
    folder = Path(run_dir) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    records = sample_records(output, tokenizer, limit)
    (folder / f"eval_step_{step}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                              for r in records))
