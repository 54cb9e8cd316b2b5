"""The inference-engine interface.

An engine lives in its own Ray actor (``generator.num_inference_engines`` of them) and may run several worker
processes inside (tensor parallelism). It takes token ids in and gives token ids out (never text in), with the
log-probability of every sampled token under the *temperature-scaled full distribution* (``log_softmax(logits /
T)`` before top-p/top-k/min-p truncation; T=1 when T=0), which is what the trainer computes for the same tokens.

Every request is its own ``await engine.generate(request)``: an engine batches concurrent requests itself
(continuous batching), so a slow trajectory never holds up the others.

Memory (colocated with the trainer on one device): ``sleep(level)`` releases memory (level 1: the KV cache is
dropped and the weights are moved off the device; level 2: both dropped, the next weight sync restores the
weights) and ``wake_up(tags)`` restores what the tags name: ``"weights"`` (before a weight sync) and then
``"kv_cache"`` (before generating); no tags means both. Generating on a sleeping engine raises
:class:`EngineStateError`; :meth:`InferenceEngine.sleep_state` tells what is awake. Requests still running when
``sleep`` is called end with ``stop_reason="abort"``.

Weight sync (see :mod:`skyrl_core.weight_sync.base`): ``init_weight_receivers(info, first_rank)`` builds one
receiver per worker process with ranks ``first_rank .. first_rank + num_receivers - 1`` and connects them;
``update_weights(request)`` applies one chunk described by the sender; ``reset_prefix_cache()`` follows every sync.
Receivers are built as ``receiver_cls(config=info.extra.get("transport_config"), init_info=info, rank=...)``: the
engine actor puts the ``generator.<transport>`` section there (see
:func:`skyrl_core.inference.receivers.build_receiver`).

Construction convention (every registered class except environments): ``engine_cls(config=<generator.<backend>
section or None>, model_path=..., dtype=..., seed=..., tensor_parallel_size=..., gpu_memory_utilization=...,
max_num_seqs=..., max_num_batched_tokens=..., enable_prefix_caching=..., enforce_eager=...,
**generator.engine_init_kwargs)``: the ``generator.*`` engine knobs are passed to every backend, which honours
them or refuses the values it cannot honour in :meth:`InferenceEngine.check_run`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from skyrl_core.weight_sync.base import WeightSyncInitInfo, WeightUpdateRequest

StopReason = Literal["stop", "length", "abort"]
#: Where an engine's weights are: on its device, offloaded (level-1 sleep), or dropped (level-2 sleep).
WeightsState = Literal["device", "offloaded", "dropped"]
#: What ``wake_up`` can restore.
WAKE_TAGS = ("weights", "kv_cache")


@attrs.define(kw_only=True)
class SamplingParams:
    """Per-request sampling settings (the fields of ``generator.sampling_params``)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    max_tokens: int = 1024
    stop: list[str] | None = None
    stop_token_ids: list[int] | None = None
    repetition_penalty: float = 1.0


@attrs.define(kw_only=True)
class GenerationRequest:
    """One prompt, as token ids.

    ``session_id`` keeps the turns of one multi-turn trajectory on one engine (its prefix cache);
    ``request_id`` names the request for :meth:`InferenceEngine.abort`; ``seed``, when set, seeds this request's
    sampling alone, so its draws do not depend on which engine serves it or on the order requests arrive in
    (the trainer derives it from ``trainer.seed``, the step and the trajectory, which makes runs and resumed runs
    reproducible).
    """

    prompt_token_ids: list[int]
    sampling: SamplingParams = attrs.field(factory=SamplingParams)
    session_id: str | None = None
    request_id: str | None = None
    seed: int | None = None


@attrs.define(kw_only=True)
class GenerationResult:
    """One completion: the sampled token ids exactly as sampled, their log-probs, and why it stopped.

    ``stop_reason`` is ``"stop"`` (an EOS/stop token or a stop string was produced; that token is included),
    ``"length"`` (``max_tokens`` reached) or ``"abort"`` (aborted; the tokens sampled so far are kept).
    """

    token_ids: list[int]
    logprobs: list[float]
    stop_reason: StopReason


class EngineStateError(RuntimeError):
    """The engine cannot serve this call in its current state (asleep, weights not synced yet, shut down)."""


@attrs.frozen(kw_only=True)
class SleepState:
    """What :meth:`InferenceEngine.sleep` released: ``weights`` is where the weights are; ``kv_cache`` is True
    when generation memory is available (the engine generates only when ``weights == "device"`` and
    ``kv_cache``)."""

    weights: WeightsState = "device"
    kv_cache: bool = True

    @property
    def awake(self) -> bool:
        return self.weights == "device" and self.kv_cache


class InferenceEngine(ABC):
    """A model that samples completions and whose weights can be replaced in place (see the module doc)."""

    #: True when the engine can run without a GPU.
    supports_cpu: bool = False
    #: The weight-sync transport ``auto`` picks when the engines share the policy's GPUs (one that allows a
    #: sender and a receiver on one device); ``None``: the object store (``ray``).
    colocated_weight_transport: str | None = None

    @staticmethod
    def missing() -> list[str]:
        """What this machine lacks for the backend (a package, a GPU), one line each; ``auto`` skips a backend
        that lacks something."""
        return []

    @staticmethod
    def check_run(config: Any) -> None:
        """Refuse, before any actor starts, a run config this backend cannot honour (raise
        :class:`~skyrl_core.errors.UserError` naming the key and the fix; a missing package or GPU too)."""

    @property
    def weight_transfer_dtype(self) -> str | None:
        """The dtype the engine wants its weights sent in (e.g. ``"float32"``); ``None``: its model dtype."""
        return None

    @property
    def num_receivers(self) -> int:
        """Worker processes that receive weights (``tensor_parallel_size * pipeline_parallel_size``)."""
        return 1

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Sample one completion for ``request``."""

    @abstractmethod
    async def sleep(self, level: int = 1) -> None:
        """Release generation memory while the trainer uses the device (see the module doc for levels)."""

    @abstractmethod
    async def wake_up(self, tags: Sequence[str] | None = None) -> None:
        """Restore what ``tags`` (a subset of :data:`WAKE_TAGS`; ``None`` = all) name."""

    @abstractmethod
    async def sleep_state(self) -> SleepState:
        """What is awake now (see :class:`SleepState`)."""

    @abstractmethod
    async def reset_prefix_cache(self) -> None:
        """Forget cached prefixes (their KV was computed with the old weights)."""

    @abstractmethod
    async def abort(self, request_ids: Sequence[str] | None = None) -> None:
        """End the named requests (``None``: all running ones); they return with ``stop_reason="abort"``."""

    @abstractmethod
    async def init_weight_receivers(self, info: WeightSyncInitInfo, first_rank: int) -> None:
        """Build and connect one receiver per worker process (ranks from ``first_rank``)."""

    @abstractmethod
    async def update_weights(self, request: WeightUpdateRequest) -> None:
        """Receive one chunk in every worker process and load it into the model."""

    @abstractmethod
    async def probe_logprobs(self, token_ids: list[int]) -> list[float]:
        """``log p(token_ids[t] | token_ids[:t])`` for ``t >= 1`` at temperature 1: the post-sync weight check."""

    async def state_dict(self) -> dict[str, Any]:
        """The engine's current weights (for checks); backends that cannot expose them may raise."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its weights")

    async def shutdown(self) -> None:
        """Free every resource; called once before the actor exits."""
