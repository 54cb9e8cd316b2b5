"""Hand-built rollout batches and run configs for the DAPO tests."""

from __future__ import annotations

from typing import Any

from skyrl_core.config.loader import RunArgs, resolve_config
from skyrl_core.generator import GeneratorOutput
from skyrl_core.trainer.batch import RolloutBatch, build_batch

PAD = 0


def make_output(rewards: list[float], lengths: list[int] | None = None,
                stop_reasons: list[str] | None = None) -> GeneratorOutput:
    """One trajectory per reward: a 2-token prompt, a response of ``lengths[i]`` tokens (default 3) whose tokens
    encode the row (``100 * row + t``), and the reward on its last token."""
    lengths = lengths or [3] * len(rewards)
    responses = [[100 * row + t for t in range(n)] for row, n in enumerate(lengths)]
    return GeneratorOutput(
        prompt_token_ids=[[1, 2 + row] for row in range(len(rewards))], response_ids=responses,
        loss_masks=[[1] * n for n in lengths],
        token_rewards=[[0.0] * (n - 1) + [w] for n, w in zip(lengths, rewards, strict=True)],
        rollout_logprobs=[[-1.0] * n for n in lengths],
        stop_reasons=stop_reasons or ["stop"] * len(rewards), rewards=list(rewards),
        env_classes=["e"] * len(rewards), env_metrics={}, num_env_errors=0, num_env_timeouts=0,
        num_turns=[1] * len(rewards),
    )


def grouped_batch(groups: list[list[float]], **kw: Any) -> RolloutBatch:
    """A batch whose group ``g`` (id ``g``) has one row per reward in ``groups[g]``."""
    rewards = [w for group in groups for w in group]
    ids = [g for g, group in enumerate(groups) for _ in group]
    return build_batch(make_output(rewards, **kw), ids, PAD)


def dapo_config(pm: Any, *overrides: str) -> Any:
    """The resolved run config of ``--algo dapo`` with ``overrides`` (no env)."""
    return resolve_config(RunArgs(algo="dapo", overrides=overrides), pm)
