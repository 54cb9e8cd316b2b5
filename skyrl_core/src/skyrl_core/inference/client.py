"""``EngineClient``: one ``generate`` call over several inference engines.

Routing. A request with a ``session_id`` goes to engine ``zlib.crc32(session_id) % num_engines``: the same session
reaches the same engine in every call and in every process (Python's ``hash()`` of a string is salted per process,
so it is not used), which keeps a multi-turn conversation's prefix in that engine's cache. Requests without a
session id are split into contiguous, equal-sized (within one) chunks, one per engine. Each engine gets one call
with all of its requests, so it can batch them; results come back in request order.

Engines are either Ray actor handles (``remote=True``: every engine's call is started with ``.remote`` before any
result is awaited, so the engines work in parallel) or plain in-process :class:`InferenceEngine` objects
(``remote=False``: called one after the other, for tests and single-process use).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from skyrl_core.inference.base import GenerationRequest, GenerationResult


class EngineClient:
    """Spreads requests over ``engines`` (Ray actor handles when ``remote``, else engine objects)."""

    def __init__(self, engines: Sequence[Any], *, remote: bool) -> None:
        if not engines:
            raise ValueError("EngineClient needs at least one inference engine")
        self.engines = list(engines)
        self.remote = remote

    @property
    def num_engines(self) -> int:
        return len(self.engines)

    def engine_of_session(self, session_id: str) -> int:
        """The index of the engine that serves ``session_id``."""
        return zlib.crc32(session_id.encode("utf-8")) % len(self.engines)

    def route(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        """Per engine, the indices (into ``requests``) of the requests it serves, in request order."""
        routes: list[list[int]] = [[] for _ in self.engines]
        loose = []
        for i, request in enumerate(requests):
            if request.session_id is None:
                loose.append(i)
            else:
                routes[self.engine_of_session(request.session_id)].append(i)
        per_engine, extra = divmod(len(loose), len(self.engines))
        start = 0
        for engine, route in enumerate(routes):
            end = start + per_engine + (engine < extra)
            route.extend(loose[start:end])
            route.sort()
            start = end
        return routes

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One completion per request, in request order."""
        routes = [(engine, route) for engine, route in enumerate(self.route(requests)) if route]
        chunks = [[requests[i] for i in route] for _, route in routes]
        if self.remote:
            import ray

            pending = [self.engines[engine].generate.remote(chunk) for (engine, _), chunk in zip(routes, chunks)]
            outputs = ray.get(pending)
        else:
            outputs = [self.engines[engine].generate(chunk) for (engine, _), chunk in zip(routes, chunks)]
        results: list[GenerationResult | None] = [None] * len(requests)
        for (engine, route), output in zip(routes, outputs):
            if len(output) != len(route):
                raise RuntimeError(
                    f"inference engine {engine} returned {len(output)} results for {len(route)} requests"
                )
            for i, result in zip(route, output):
                results[i] = result
        return results  # type: ignore[return-value]  # every index belongs to exactly one route

    def sleep(self) -> None:
        """Put every engine to sleep (release generation memory while the trainer uses the devices)."""
        self._call_all("sleep")

    def wake_up(self) -> None:
        """Wake every engine up."""
        self._call_all("wake_up")

    def _call_all(self, method: str) -> list[Any]:
        if self.remote:
            import ray

            return ray.get([getattr(engine, method).remote() for engine in self.engines])
        return [getattr(engine, method)() for engine in self.engines]
