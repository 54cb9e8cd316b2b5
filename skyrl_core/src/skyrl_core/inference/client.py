"""``EngineClient``: one ``await client.generate(request)`` over several inference engines.

Routing. A request with a ``session_id`` goes to engine ``zlib.crc32(session_id) % num_engines``: the same session
reaches the same engine in every call and in every process (Python's ``hash()`` of a string is salted per process,
so it is not used), which keeps a multi-turn conversation's prefix on that engine. Any other request goes to the
engine with the fewest requests in flight from this client (ties: the one that got the fewest so far).

Engines are Ray actor handles (every method is called with ``.remote(...)`` and the ObjectRef awaited) or
in-process :class:`~skyrl_core.inference.base.InferenceEngine` objects (their coroutine awaited); each engine is
recognised on its own. The control calls (``sleep``, ``wake_up``, ``reset_prefix_cache``, ``abort``) go to every
engine at once and return when all are done; from synchronous code, ``asyncio.run(client.sleep(2))``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any

from skyrl_core.inference.base import GenerationRequest, GenerationResult


class EngineClient:
    """Routes requests over ``engines`` (Ray actor handles or engine objects)."""

    def __init__(self, engines: Sequence[Any]) -> None:
        if not engines:
            raise ValueError("EngineClient needs at least one inference engine")
        self.engines = list(engines)
        #: Requests sent to each engine and not answered yet.
        self.in_flight = [0] * len(self.engines)
        self._sent = [0] * len(self.engines)

    @property
    def num_engines(self) -> int:
        return len(self.engines)

    def engine_of_session(self, session_id: str) -> int:
        """The index of the engine that serves ``session_id``."""
        return zlib.crc32(session_id.encode("utf-8")) % len(self.engines)

    def route(self, request: GenerationRequest) -> int:
        """The index of the engine ``request`` goes to now (see the module doc)."""
        if request.session_id is not None:
            return self.engine_of_session(request.session_id)
        return min(range(len(self.engines)), key=lambda i: (self.in_flight[i], self._sent[i], i))

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """One completion for ``request`` from the engine :meth:`route` picks."""
        index = self.route(request)
        self.in_flight[index] += 1
        self._sent[index] += 1
        try:
            return await _call(self.engines[index], "generate", request)
        finally:
            self.in_flight[index] -= 1

    async def sleep(self, level: int = 1) -> None:
        await self._call_all("sleep", level)

    async def wake_up(self, tags: Sequence[str] | None = None) -> None:
        await self._call_all("wake_up", None if tags is None else list(tags))

    async def reset_prefix_cache(self) -> None:
        await self._call_all("reset_prefix_cache")

    async def abort(self, request_ids: Sequence[str] | None = None) -> None:
        await self._call_all("abort", None if request_ids is None else list(request_ids))

    async def _call_all(self, method: str, *args: Any) -> list[Any]:
        return list(await asyncio.gather(*(_call(engine, method, *args) for engine in self.engines)))


async def _call(engine: Any, method: str, *args: Any) -> Any:
    """``engine.method(*args)`` awaited: through ``.remote`` for a Ray actor handle, else the coroutine."""
    bound = getattr(engine, method)
    remote = getattr(bound, "remote", None)
    return await (remote(*args) if remote is not None else bound(*args))
