"""Reading vLLM's output objects into skyrl results (pure: duck-typed on the documented fields).

``vllm.RequestOutput`` has ``outputs`` (a list of ``CompletionOutput``), ``prompt_logprobs`` and ``finished``.
``CompletionOutput`` has ``token_ids``, ``logprobs`` (one ``{token_id: Logprob}`` dict per token, ``Logprob.logprob``
a float; with ``SamplingParams.logprobs=0`` the dict holds just the sampled token), ``finish_reason``
(``"stop"``, ``"length"``, ``"abort"``, or ``None`` while running) and
``stop_reason`` (the stop token id or string that ended it). The engine asks for ``RequestOutputKind.DELTA``, so each
output carries only the tokens produced since the previous one: :class:`Completion` appends them, which keeps the
tokens of an aborted request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from skyrl_core.inference.base import GenerationResult, StopReason

STOP_REASONS: dict[str, StopReason] = {"stop": "stop", "length": "length", "abort": "abort"}


def stop_reason_of(finish_reason: str | None, *, aborted: bool) -> StopReason:
    """skyrl's stop reason for vLLM's ``finish_reason`` (``None``: the stream ended early, i.e. we aborted it)."""
    if finish_reason is None:
        if aborted:
            return "abort"
        raise RuntimeError("vLLM ended a request without a finish reason")
    if finish_reason not in STOP_REASONS:
        raise RuntimeError(f"vLLM finished a request with finish_reason={finish_reason!r}")
    return STOP_REASONS[finish_reason]


def logprob_of(entry: Mapping[int, Any] | None, token_id: int, position: int) -> float:
    """The log-prob of ``token_id`` in one position's ``{token_id: Logprob}`` dict."""
    if entry is None or token_id not in entry:
        raise RuntimeError(f"vLLM returned no log-prob for token {token_id} at position {position}")
    return float(entry[token_id].logprob)


@attrs.define
class Completion:
    """One request's tokens and log-probs, grown from vLLM's delta outputs."""

    token_ids: list[int] = attrs.field(factory=list)
    logprobs: list[float] = attrs.field(factory=list)
    finish_reason: str | None = None

    def add(self, output: Any) -> None:
        """Append the new tokens of one delta ``RequestOutput``."""
        completion = output.outputs[0]
        new_ids = list(completion.token_ids)
        entries = completion.logprobs
        if entries is None or len(entries) != len(new_ids):
            raise RuntimeError(f"vLLM returned {0 if entries is None else len(entries)} log-probs for "
                               f"{len(new_ids)} tokens (the engine asks for logprobs=0)")
        start = len(self.token_ids)
        for offset, (token, entry) in enumerate(zip(new_ids, entries)):
            self.logprobs.append(logprob_of(entry, token, start + offset))
        self.token_ids.extend(new_ids)
        if completion.finish_reason is not None:
            self.finish_reason = completion.finish_reason

    def result(self, *, aborted: bool) -> GenerationResult:
        reason = stop_reason_of(self.finish_reason, aborted=aborted)
        return GenerationResult(token_ids=list(self.token_ids), logprobs=list(self.logprobs), stop_reason=reason)


def prompt_logprobs_of(output: Any, token_ids: Sequence[int]) -> list[float]:
    """``log p(token_ids[t] | token_ids[:t])`` for ``t >= 1`` from a ``RequestOutput`` made with
    ``prompt_logprobs=0`` (its first entry is ``None``: the first token has no context)."""
    entries = output.prompt_logprobs
    if entries is None or len(entries) != len(token_ids):
        raise RuntimeError(f"vLLM returned {0 if entries is None else len(entries)} prompt log-probs for "
                           f"{len(token_ids)} tokens")
    return [logprob_of(entries[t], token_ids[t], t) for t in range(1, len(token_ids))]
