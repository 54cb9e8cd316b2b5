"""Per-step rollout metrics and the sample records written to ``samples/step_<N>.jsonl``."""

from __future__ import annotations

from typing import Any

from skyrl_core.generator.types import GeneratorOutput


def pass_at_n(rewards: list[float], group_ids: list[Any]) -> float:
    """Fraction of prompt groups in which at least one trajectory got a positive reward."""
    best: dict[Any, float] = {}
    for gid, reward in zip(group_ids, rewards, strict=True):
        best[gid] = max(best.get(gid, float("-inf")), reward)
    return sum(1.0 for r in best.values() if r > 0) / max(1, len(best))


def rollout_metrics(output: GeneratorOutput, group_ids: list[Any], *, prefix: str) -> dict[str, float]:
    rewards = output.rewards
    count = max(1, len(rewards))
    lengths = [sum(mask) for mask in output.loss_masks]
    metrics = {
        f"{prefix}reward/mean": sum(rewards) / count,
        f"{prefix}pass_at_n": pass_at_n(rewards, group_ids),
        f"{prefix}response_length/mean": sum(lengths) / count,
        f"{prefix}response_length/max": float(max(lengths, default=0)),
        f"{prefix}stop_reason/length_fraction": sum(r == "length" for r in output.stop_reasons) / count,
        f"{prefix}env/errors": float(output.num_env_errors),
        f"{prefix}env/timeouts": float(output.num_env_timeouts),
        f"{prefix}turns/mean": sum(output.num_turns) / count,
    }
    by_env: dict[str, list[float]] = {}
    for env_class, reward in zip(output.env_classes, rewards, strict=True):
        by_env.setdefault(env_class, []).append(reward)
    for env_class, values in by_env.items():
        metrics[f"{prefix}reward/{env_class}/mean"] = sum(values) / len(values)
    metrics.update({f"{prefix}{key}": value for key, value in output.env_metrics.items()})
    return metrics


def sample_records(output: GeneratorOutput, tokenizer: Any, limit: int) -> list[dict[str, Any]]:
    records = []
    for i in range(min(limit, len(output.rewards))):
        records.append({
            "prompt": tokenizer.decode(output.prompt_token_ids[i], skip_special_tokens=False),
            "response": tokenizer.decode(output.response_ids[i], skip_special_tokens=False),
            "reward": output.rewards[i],
            "env_class": output.env_classes[i],
            "stop_reason": output.stop_reasons[i],
            "turns": output.num_turns[i],
        })
    return records
