"""Helpers for the end-to-end tests: a run config for a tiny model, and reading metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skyrl_core.config.loader import RunArgs, resolve_config

#: Small, fast settings: fp32 (so engine and trainer log-probs agree to 1e-4), no eval unless asked.
FAST = (
    "trainer.bf16=false",
    "trainer.train_batch_size=4",
    "trainer.policy_mini_batch_size=4",
    "generator.n_samples_per_prompt=4",
    "generator.sampling_params.max_generate_length=16",
    "trainer.eval_before_train=false",
    "trainer.eval_interval=0",
    "trainer.micro_train_batch_size_per_gpu=8",
    "trainer.micro_forward_batch_size_per_gpu=16",
    "trainer.gradient_checkpointing=false",
)


def run_config(pm: Any, model: Path, out: Path, *overrides: str, env: str | None = "multiply", algo: str = "grpo"):
    args = RunArgs(env=env, algo=algo, overrides=(
        f"trainer.policy.model.path={model}", f"trainer.output_dir={out}", *FAST, *overrides))
    return resolve_config(args, pm)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
