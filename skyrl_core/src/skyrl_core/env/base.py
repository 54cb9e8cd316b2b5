"""``BaseTextEnv``: a multi-turn text environment, compatible with SkyRL's ``skyrl_gym`` API.

An environment receives the model's text for one turn in :meth:`BaseTextEnv.step` and answers with a reward,
whether the episode is done, and optional observation messages that are appended to the conversation for the
next turn.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import attrs

Message = dict[str, str]
ConversationType = list[Message]


@attrs.define(kw_only=True)
class BaseTextEnvStepOutput:
    """What one :meth:`BaseTextEnv.step` returns.

    ``observations`` are chat messages (``{"role": ..., "content": ...}``) appended to the conversation;
    ``reward`` is this turn's reward (placed on the turn's last generated token); ``done`` ends the episode;
    ``metadata`` is free-form; ``postprocessed_action`` replaces the model's text in the chat history (it breaks
    token-in-token-out for later turns, so skyrl logs a warning when it is used).

    Item access (``out["reward"]``) works too, for code written against SkyRL's TypedDict.
    """

    observations: ConversationType = attrs.field(factory=list)
    reward: float = 0.0
    done: bool = False
    metadata: dict[str, Any] = attrs.field(factory=dict)
    postprocessed_action: str | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in attrs.fields_dict(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class BaseTextEnv(ABC):
    """Base class of every text environment.

    :param env_config: an instance of the attrs class registered with the env (section ``environment.<name>``),
        or ``None``.
    :param extras: every dataset column of the row except ``prompt`` and ``env_class`` (``reward_spec``,
        ``extra_info``, ``data_source``, custom columns), plus ``max_turns``.

    Subclasses override :meth:`step` and optionally :meth:`init`, :meth:`close`, :meth:`get_metrics` and
    :meth:`aggregate_metrics`. A subclass that defines ``__init__`` must call ``super().__init__(env_config,
    extras)``.
    """

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None):
        self.env_config = env_config
        self.extras: dict[str, Any] = dict(extras or {})
        reward_spec = self.extras.get("reward_spec")
        self.ground_truth: Any = reward_spec.get("ground_truth") if isinstance(reward_spec, dict) else None
        self.max_turns: int = int(self.extras.get("max_turns") or 1)
        self.turns: int = 0

    def init(self, prompt: ConversationType) -> tuple[ConversationType, dict[str, Any]]:
        """Start an episode; returns the conversation to send to the model and an info dict."""
        return prompt, {}

    @abstractmethod
    def step(self, action: str) -> BaseTextEnvStepOutput:
        """Grade the model's text for one turn."""

    def close(self) -> None:
        """Release resources held by the episode. Called once per episode, also after an error."""

    def get_metrics(self) -> dict[str, Any]:
        """Numeric metrics of the finished episode (aggregated over a batch by :meth:`aggregate_metrics`)."""
        return {}

    @staticmethod
    def aggregate_metrics(metrics: list[dict[str, Any]]) -> dict[str, float]:
        """Mean of every numeric key over the episodes that report it."""
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for episode in metrics:
            for key, value in episode.items():
                if isinstance(value, bool):
                    value = float(value)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    sums[key] = sums.get(key, 0.0) + float(value)
                    counts[key] = counts.get(key, 0) + 1
        return {key: sums[key] / counts[key] for key in sums}
