"""The inference-engine interface.

An engine lives in its own Ray actor (``generator.num_inference_engines`` of them). It takes token ids in and gives
token ids out (never text in), with the log-probability of every sampled token under the *temperature-scaled full
distribution* (``log_softmax(logits / T)`` before top-p/top-k/min-p truncation; T=1 when T=0), which is what the
trainer computes for the same tokens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Literal

import attrs

StopReason = Literal["stop", "length", "abort"]


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
    """One prompt, as token ids."""

    prompt_token_ids: list[int]
    sampling: SamplingParams = attrs.field(factory=SamplingParams)
    session_id: str | None = None


@attrs.define(kw_only=True)
class GenerationResult:
    """One completion: the sampled token ids exactly as sampled, their log-probs, and why it stopped.

    ``stop_reason`` is ``"stop"`` (an EOS/stop token or a stop string was produced; that token is included) or
    ``"length"`` (``max_tokens`` reached).
    """

    token_ids: list[int]
    logprobs: list[float]
    stop_reason: StopReason


class InferenceEngine(ABC):
    """A model that samples completions and whose weights can be replaced in place.

    Constructed inside its actor as ``engine_cls(model_path=..., dtype=..., seed=..., config=...)`` where
    ``config`` is the backend's own config section (``generator.<backend>``) or ``None``.
    """

    #: True when the engine can run without a GPU.
    supports_cpu: bool = False

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Sample one completion per request; results are in request order."""

    @abstractmethod
    def sleep(self) -> None:
        """Release the memory held for generation (weights and KV cache) while the trainer uses the device."""

    @abstractmethod
    def wake_up(self) -> None:
        """Restore what :meth:`sleep` released."""

    @abstractmethod
    def parameter_specs(self) -> list[tuple[str, tuple[int, ...], str]]:
        """``(name, shape, dtype)`` of every weight the engine expects from a weight sync, in a fixed order."""

    @abstractmethod
    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Copy new weights in place (names as in the policy's HF ``state_dict``)."""

    def state_dict(self) -> dict[str, Any]:
        """The engine's current weights (for checks); backends that cannot expose them may raise."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its weights")

    def shutdown(self) -> None:
        """Free every resource; called once before the actor exits."""
