"""Fake vLLM objects shaped like the documented ones (``RequestOutput``, ``CompletionOutput``, ``Logprob``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any


def logprob(value: float) -> SimpleNamespace:
    return SimpleNamespace(logprob=value, rank=1, decoded_token=None)


def delta_output(token_ids: list[int], logprobs: list[float], finish_reason: str | None = None) -> SimpleNamespace:
    """One DELTA ``RequestOutput``: the new tokens, each with ``{token: Logprob}`` (plus a decoy top-1 entry)."""
    entries = [{t: logprob(lp), 99999: logprob(-0.01)} for t, lp in zip(token_ids, logprobs)]
    completion = SimpleNamespace(index=0, text="", token_ids=token_ids, logprobs=entries, cumulative_logprob=None,
                                 finish_reason=finish_reason, stop_reason=None)
    return SimpleNamespace(outputs=[completion], prompt_logprobs=None, finished=finish_reason is not None)


class FakeAsyncLLM:
    """Streams ``token = prompt[-1] + step + 1`` with log-prob ``-0.1 * (step + 1)``, one token per 10 ms."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.reset_results = [True]
        self.shut = False

    async def generate(self, prompt: dict, params: Any, request_id: str):
        self.calls.append(("generate", (prompt, params, request_id)))
        if params.kwargs.get("prompt_logprobs") == 0:
            ids = prompt["prompt_token_ids"]
            entries = [None] + [{t: logprob(-float(i))} for i, t in enumerate(ids[1:], start=1)]
            yield SimpleNamespace(outputs=[], prompt_logprobs=entries, finished=True)
            return
        last, n = prompt["prompt_token_ids"][-1], params.kwargs["max_tokens"]
        for step in range(n):
            await asyncio.sleep(0.01)
            finish = "length" if step == n - 1 else None
            yield delta_output([last + step + 1], [-0.1 * (step + 1)], finish)

    async def sleep(self, level: int) -> None:
        self.calls.append(("sleep", level))

    async def wake_up(self, tags: list[str] | None = None) -> None:
        self.calls.append(("wake_up", tags))

    async def reset_prefix_cache(self, reset_running_requests: bool = False) -> bool:
        self.calls.append(("reset_prefix_cache", reset_running_requests))
        return self.reset_results.pop(0) if self.reset_results else True

    async def collective_rpc(self, method: str, timeout: float | None = None, args: tuple = (), kwargs=None):
        self.calls.append(("collective_rpc", (method, args)))
        return [None]

    def shutdown(self) -> None:
        self.shut = True


class FakeSamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
