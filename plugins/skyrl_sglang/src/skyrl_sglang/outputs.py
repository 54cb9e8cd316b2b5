"""Reading SGLang's output dicts into skyrl results (pure).

``Engine.async_generate(..., return_logprob=True)`` returns a dict with ``output_ids``, ``text`` and ``meta_info``;
``meta_info["finish_reason"]`` is ``{"type": "stop" | "length" | "abort", ...}`` and
``meta_info["output_token_logprobs"]`` a list of ``(logprob, token_id, text_or_None)``, one per generated token.
With ``logprob_start_len=0``, ``meta_info["input_token_logprobs"]`` has the same form for the prompt, with
``None`` as the first log-prob (no context).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skyrl_core.inference.base import GenerationResult, StopReason

STOP_REASONS: dict[str, StopReason] = {"stop": "stop", "length": "length", "abort": "abort"}


def stop_reason_of(meta_info: dict[str, Any]) -> StopReason:
    finish = meta_info.get("finish_reason")
    kind = finish.get("type") if isinstance(finish, dict) else None
    if kind not in STOP_REASONS:
        raise RuntimeError(f"SGLang finished a request with finish_reason={finish!r}")
    return STOP_REASONS[kind]


def result_of(output: dict[str, Any]) -> GenerationResult:
    """Token ids and log-probs from ``output_token_logprobs`` (they come in pairs), checked against ``output_ids``."""
    meta = output["meta_info"]
    triples = meta.get("output_token_logprobs")
    if triples is None:
        raise RuntimeError("SGLang returned no output_token_logprobs (the engine asks for return_logprob=True)")
    token_ids = [int(token) for _, token, *_ in triples]
    output_ids = output.get("output_ids")
    if output_ids is not None and list(output_ids) != token_ids:
        raise RuntimeError(f"SGLang's output_ids {list(output_ids)} differ from its logprob tokens {token_ids}")
    return GenerationResult(token_ids=token_ids, logprobs=[float(lp) for lp, *_ in triples],
                            stop_reason=stop_reason_of(meta))


def input_logprobs_of(output: dict[str, Any], token_ids: Sequence[int]) -> list[float]:
    """``log p(token_ids[t] | token_ids[:t])`` for ``t >= 1`` from ``input_token_logprobs``."""
    triples = output["meta_info"].get("input_token_logprobs") or []
    if len(triples) != len(token_ids) or [int(t) for _, t, *_ in triples] != list(token_ids):
        raise RuntimeError(f"SGLang returned input log-probs for {[t for _, t, *_ in triples]}, "
                           f"expected {list(token_ids)}")
    return [float(lp) for lp, *_ in triples[1:]]
