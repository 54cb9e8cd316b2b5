"""One trajectory's state, and the token ids inserted between turns (the token accounting of
:mod:`skyrl_core.generator.agent_loop`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from skyrl_core.errors import UserError
from skyrl_core.generator.env_runner import EnvOutputError, check_init_output, check_step_output

#: The fixed conversation after which observation messages are rendered (as SkyRL does).
BASE_CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "I am a user."},
]


def chat_template_ids(tokenizer: Any, messages: list[dict[str, Any]], *, add_generation_prompt: bool) -> list[int]:
    """The token ids of ``messages`` rendered with the tokenizer's chat template."""
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=False
    )
    if isinstance(ids, Mapping):  # tokenizers that return a BatchEncoding regardless
        ids = ids["input_ids"]
    return list(ids)


class ObservationEncoder:
    """Token ids inserted between two turns, rendered after :data:`BASE_CONVERSATION` (see the module doc)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_id = tokenizer.eos_token_id
        self.base_ids = chat_template_ids(tokenizer, BASE_CONVERSATION, add_generation_prompt=False)
        eos_positions = [i for i, token in enumerate(self.base_ids) if token == self.eos_id]
        self.eos_tail = self.base_ids[eos_positions[-1] + 1 :] if eos_positions else []

    def encode(self, observations: list[dict[str, Any]], *, after_eos: bool) -> list[int]:
        """Tokens of ``observations`` plus the next generation prompt; the EOS tail first when ``after_eos``."""
        ids = chat_template_ids(self.tokenizer, BASE_CONVERSATION + observations, add_generation_prompt=True)
        if ids[: len(self.base_ids)] != self.base_ids:
            raise UserError(
                "the tokenizer's chat template renders a conversation differently once messages follow it, so "
                "observations cannot be appended as tokens (token-in-token-out); use a template that only appends"
            )
        return (self.eos_tail if after_eos else []) + ids[len(self.base_ids) :]


@attrs.define(eq=False)
class Trajectory:
    """The state of one trajectory while the batch runs (see :mod:`skyrl_core.generator.agent_loop`)."""

    index: int
    env_class: str
    env: Any = None
    prompt_ids: list[int] = attrs.field(factory=list)
    response_ids: list[int] = attrs.field(factory=list)
    loss_mask: list[int] = attrs.field(factory=list)
    logprobs: list[float] = attrs.field(factory=list)
    token_rewards: list[float] = attrs.field(factory=list)
    reward: float = 0.0
    turns: int = 0
    stop_reason: str | None = None  # set once the trajectory is finished
    metrics: dict[str, Any] | None = None  # the env's get_metrics() of a trajectory that did not fail
    failed: bool = False  # an env call failed

    def add(self, ids: list[int], *, sampled: bool, logprobs: list[float] | None = None) -> None:
        self.response_ids += ids
        self.loss_mask += [int(sampled)] * len(ids)
        self.logprobs += list(logprobs) if logprobs is not None else [0.0] * len(ids)
        self.token_rewards += [0.0] * len(ids)

    def add_reward(self, reward: float) -> None:
        """Put ``reward`` on the last response token (the turn's last sampled token, right after it is added)."""
        self.reward += reward
        if self.token_rewards:
            self.token_rewards[-1] += reward

    def zero_reward(self) -> None:
        self.reward = 0.0
        self.token_rewards = [0.0] * len(self.token_rewards)

    def fail(self) -> None:
        self.zero_reward()
        self.failed = True
        self.stop_reason = "abort"


# -- env calls, run on env threads ------------------------------------------------------------------------


def env_init(t: Trajectory, prompt: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return check_init_output(t.env.init(prompt), t.env_class)


def env_step(t: Trajectory, action: str) -> Any:
    return check_step_output(t.env.step(action), t.env_class)


def env_metrics(t: Trajectory) -> dict[str, Any]:
    metrics = t.env.get_metrics()
    if not isinstance(metrics, Mapping):
        raise EnvOutputError(f"env '{t.env_class}': get_metrics() must return a dict, got {type(metrics).__name__}")
    return dict(metrics)
