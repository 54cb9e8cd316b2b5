"""The generator contract: what the trainer hands a rollout generator and what it gets back.

A generator turns a batch of prompts into trajectories. Every per-trajectory list of :class:`GeneratorOutput` has
one entry per trajectory, in the order of :class:`GeneratorInput`. Per trajectory, ``response_ids``,
``loss_masks``, ``token_rewards`` and ``rollout_logprobs`` have the same length: every token after the prompt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from abc import ABC, abstractmethod
from typing import Any

import attrs

from skyrl_core.inference.base import SamplingParams

PHASES = ("train", "eval")


@attrs.define(kw_only=True)
class GeneratorInput:
    """One entry per trajectory; the caller has already repeated each prompt ``n_samples_per_prompt`` times.

    :param prompts: chat messages of each trajectory's prompt.
    :param env_classes: registered env name per trajectory (``None`` or ``""``: ``environment.env_class``).
    :param env_extras: dataset columns of each row except ``prompt`` and ``env_class``.
    :param group_ids: the prompt group of each trajectory (GRPO/RLOO index); passed through untouched.
    :param sampling: sampling of every turn; ``sampling.max_tokens`` is the per-turn limit
        (``max_generate_length``).
    :param phase: ``"train"`` or ``"eval"``.
    :param seed: when set, the base of every request's sampling seed (see :func:`request_seed`), so the batch's
        samples do not depend on engine scheduling; ``None`` leaves seeding to the engines.
    """

    prompts: list[list[dict[str, Any]]]
    env_classes: list[str | None]
    env_extras: list[dict[str, Any]]
    group_ids: list[Any]
    sampling: SamplingParams
    phase: str = attrs.field(default="train", validator=attrs.validators.in_(PHASES))
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        sizes = {len(self.prompts), len(self.env_classes), len(self.env_extras), len(self.group_ids)}
        if len(sizes) != 1:
            raise ValueError(
                "GeneratorInput: prompts, env_classes, env_extras and group_ids must have one entry per trajectory "
                f"(got {len(self.prompts)}, {len(self.env_classes)}, {len(self.env_extras)}, {len(self.group_ids)})"
            )

    def __len__(self) -> int:
        return len(self.prompts)


@attrs.define(kw_only=True)
class GeneratorOutput:
    """The trajectories of one batch, in input order.

    :param prompt_token_ids: the chat-templated prompt (after ``env.init``), generation prompt included.
    :param response_ids: every token after the prompt: sampled tokens and, between turns, observation tokens.
    :param loss_masks: 1 on sampled tokens, 0 on observation (and other inserted) tokens.
    :param token_rewards: each turn's reward on that turn's last sampled token, 0.0 elsewhere.
    :param rollout_logprobs: the engine's log-prob of each sampled token, 0.0 on inserted tokens.
    :param stop_reasons: why each trajectory ended: ``"stop"`` (the last turn ended by itself), ``"length"`` (the
        last turn hit ``max_tokens`` or the conversation hit its token budget) or ``"abort"`` (an env call failed).
    :param rewards: each trajectory's total reward (the sum of its ``token_rewards``).
    :param env_classes: the env that ran each trajectory.
    :param env_metrics: ``environment/<env_class>/<metric>`` -> the env class's ``aggregate_metrics`` value.
    :param num_env_errors: trajectories failed by an env call that raised or returned a malformed value.
    :param num_env_timeouts: trajectories failed by an env call that exceeded ``environment.step_timeout_s``.
    :param num_turns: turns generated per trajectory.
    """

    prompt_token_ids: list[list[int]]
    response_ids: list[list[int]]
    loss_masks: list[list[int]]
    token_rewards: list[list[float]]
    rollout_logprobs: list[list[float]]
    stop_reasons: list[str]
    rewards: list[float]
    env_classes: list[str]
    env_metrics: dict[str, float]
    num_env_errors: int
    num_env_timeouts: int
    num_turns: list[int]

    def __len__(self) -> int:
        return len(self.response_ids)


class Generator(ABC):
    """A rollout generator (registered with ``register_generators``, selected by ``generator.name``).

    :param config: the generator's own config section (``generator.<name>``), ``None`` when it registered none.
    :param run_config: the whole run config (:class:`skyrl_core.config.schema.SkyRLConfig`).
    :param tokenizer: the policy's Hugging Face tokenizer (chat template included).
    :param engine_client: a :class:`skyrl_core.inference.client.EngineClient` over the inference engines.
    :param plugin_manager: the :class:`skyrl_core.plugins.PluginManager` whose registries hold the envs.

    Subclasses implement :meth:`generate_async`; the driver, which is synchronous, calls :meth:`generate`.
    """

    def __init__(self, *, config: Any = None, run_config: Any, tokenizer: Any, engine_client: Any,
                 plugin_manager: Any) -> None:
        self.config = config
        self.run_config = run_config
        self.tokenizer = tokenizer
        self.engine_client = engine_client
        self.plugin_manager = plugin_manager

    @abstractmethod
    async def generate_async(self, batch: GeneratorInput) -> GeneratorOutput:
        """Roll out every trajectory of ``batch``; the output is in input order."""

    def generate(self, batch: GeneratorInput) -> GeneratorOutput:
        """:meth:`generate_async` run to completion from synchronous code, on a fresh event loop (on a helper
        thread when this thread already runs one, e.g. inside an async actor or a notebook)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.generate_async(batch))
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="skyrl-generate") as pool:
            return pool.submit(asyncio.run, self.generate_async(batch)).result()


def request_seed(base: int, trajectory: int, turn: int) -> int:
    """A 62-bit seed for turn ``turn`` of trajectory ``trajectory`` of a batch seeded ``base`` (BLAKE2b of the three
    numbers: stable across processes and machines)."""
    digest = hashlib.blake2b(f"{base}/{trajectory}/{turn}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


def sampling_params_from_config(sampling: Any) -> SamplingParams:
    """Engine sampling settings from a ``generator.sampling_params`` / ``eval_sampling_params`` section."""
    return SamplingParams(
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        min_p=sampling.min_p,
        max_tokens=sampling.max_generate_length,
        stop=list(sampling.stop) if sampling.stop else None,
        repetition_penalty=sampling.repetition_penalty,
    )
