"""The ``multiply`` environment: the ``MultiplyEnv`` of SkyRL's "new environment" tutorial.

The model answers a multiplication question with ``\\boxed{answer}``; the reward is 1.0 when the boxed text equals
the ground truth (both stripped), ``format_score`` (config ``environment.multiply.format_score``, default 0.0) when a
boxed answer is there but wrong, and 0.0 without a boxed answer. One turn per episode.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput

_BOXED_RE = re.compile(r"\\boxed\{([^}]+)\}")


@attrs.define(kw_only=True)
class MultiplyEnvConfig:
    """Settings of the ``multiply`` env: the config section ``environment.multiply``."""

    format_score: float = attrs.field(
        default=0.0,
        metadata={"help": "Reward of a wrong answer that is well formed (a \\boxed{...} was found); 0.0 is SkyRL's "
                          "tutorial env. A small value (e.g. 0.1) helps a model that rarely answers in the format."},
    )


class MultiplyEnv(BaseTextEnv):
    """Single-turn grader of ``\\boxed{...}`` answers against ``reward_spec.ground_truth``.

    Metrics per episode: ``correct`` (reward 1.0) and ``formatted`` (a ``\\boxed{...}`` answer was found).
    """

    def __init__(self, env_config: MultiplyEnvConfig | None = None, extras: dict[str, Any] | None = None):
        super().__init__(env_config, extras)
        self.config = env_config if env_config is not None else MultiplyEnvConfig()
        self._metrics: dict[str, float] = {}

    def _parse_action(self, action: str) -> str | None:
        """The text inside the first ``\\boxed{...}``, or ``None``."""
        match = _BOXED_RE.search(action)
        return match.group(1) if match else None

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self.turns += 1
        answer = self._parse_action(action)
        is_correct = answer is not None and answer.strip() == str(self.ground_truth).strip()
        self._metrics = {"correct": float(is_correct), "formatted": float(answer is not None)}
        return BaseTextEnvStepOutput(
            observations=[],
            reward=1.0 if is_correct else (self.config.format_score if answer is not None else 0.0),
            done=True,
            metadata={"parsed_answer": answer},
        )

    def get_metrics(self) -> dict[str, float]:
        return dict(self._metrics)
