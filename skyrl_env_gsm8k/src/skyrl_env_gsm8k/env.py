"""The ``gsm8k`` environment: one turn, graded by the GSM8K rule-based reward (:mod:`skyrl_env_gsm8k.scoring`)."""

from __future__ import annotations

from typing import Any

import attrs

from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput
from skyrl_core.errors import UserError
from skyrl_env_gsm8k.scoring import METHODS, compute_score, extract_answer, normalize_number


def _method_problem(value: object) -> str | None:
    if value in METHODS:
        return None
    return (
        f"method must be one of {', '.join(METHODS)}, got {value!r} "
        "(strict: the number after the first '####'; flexible: the last number in the response)"
    )


def _check_method(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    problem = _method_problem(value)
    if problem:
        raise UserError(problem)


@attrs.define(kw_only=True)
class GSM8KEnvConfig:
    """Settings of the ``gsm8k`` env: the config section ``environment.gsm8k``."""

    method: str = attrs.field(
        default="strict",
        validator=_check_method,
        metadata={"help": "Answer extraction: strict (the number after the first '####') or flexible (the last "
                          "number in the response)."},
    )
    correct_score: float = attrs.field(default=1.0, metadata={"help": "Reward of a correct answer."})
    format_score: float = attrs.field(
        default=0.0, metadata={"help": "Reward of an answer that was extracted but is wrong."}
    )


class Gsm8kEnv(BaseTextEnv):
    """Single-turn GSM8K grader: reward from :func:`~skyrl_env_gsm8k.scoring.compute_score`, ``done`` after one step.

    The ground truth comes from the row's ``reward_spec.ground_truth``. ``env_config`` is a
    :class:`GSM8KEnvConfig` (``None``: the defaults). Metrics per episode: ``correct`` (the answer matches),
    ``formatted`` (a strict ``#### <number>`` answer is present) and ``has_answer`` (the configured method found a
    number).
    """

    def __init__(self, env_config: GSM8KEnvConfig | None = None, extras: dict[str, Any] | None = None):
        super().__init__(env_config, extras)
        self.config = env_config if env_config is not None else GSM8KEnvConfig()
        problem = _method_problem(self.config.method)  # also for a config object that is not a GSM8KEnvConfig
        if problem:
            raise UserError(f"environment.gsm8k: {problem}")
        self._metrics: dict[str, float] = {}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self.turns += 1
        cfg = self.config
        answer = extract_answer(action, cfg.method)
        reward = compute_score(
            action, self.ground_truth, method=cfg.method,
            correct_score=cfg.correct_score, format_score=cfg.format_score,
        )
        correct = answer is not None and self.ground_truth is not None and answer == normalize_number(self.ground_truth)
        self._metrics = {
            "correct": float(correct),
            "formatted": float(extract_answer(action, "strict") is not None),
            "has_answer": float(answer is not None),
        }
        return BaseTextEnvStepOutput(
            observations=[], reward=reward, done=True, metadata={"parsed_answer": answer}
        )

    def get_metrics(self) -> dict[str, float]:
        return dict(self._metrics)
