"""Running env code (constructor, ``init``, ``step``, ``get_metrics``, ``close``) so that a slow or bad env
delays or fails only its own trajectory.

An :class:`EnvRunner` lives for one generator batch. ``await runner.call(EnvCall(...))`` runs one env call on a
thread of its own (a daemon thread named ``skyrl-env-...``) while the event loop goes on with the other
trajectories; at most ``max_workers`` calls run at once (the others wait for a slot). Each call gets
``timeout_s`` seconds, counted from when its thread starts (time waiting for a slot does not count). The result
of a call is its return value or an :class:`EnvFailure`:

- ``"error"``: the call raised, or returned a malformed value (see :func:`check_step_output`,
  :func:`check_init_output`); counted in :attr:`EnvRunner.num_errors`;
- ``"timeout"``: it ran past ``timeout_s``; counted in :attr:`EnvRunner.num_timeouts`. Python cannot stop a
  thread, so the call keeps running in the background and its result is dropped; its slot is given back at once,
  so a hung env never holds up the calls behind it. Being a daemon thread, it does not delay interpreter exit.

The first error and the first timeout of a batch are logged on the ``skyrl.env`` logger (with the env class and,
for errors, the traceback); later ones are only counted. ``close`` failures (:meth:`EnvRunner.close`) are logged
once per batch and never counted or raised; ``close`` is called even on an env whose call timed out (that call may
still be running, and closing the env is the best chance to stop it).

``max_workers == 0`` runs every call inline on the event loop's thread, one after the other (every other
trajectory waits meanwhile): errors are still caught, but no time limit can be enforced.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import numbers
import threading
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from skyrl_core.env.base import BaseTextEnvStepOutput

logger = logging.getLogger("skyrl.env")

_STEP_KEYS = ("observations", "reward", "done")
_thread_numbers = itertools.count()


class EnvOutputError(Exception):
    """An env method returned a value of the wrong shape."""


@attrs.frozen
class EnvCall:
    """One env method call of one trajectory: ``what`` names it in messages (``"step"``, ``"init"``, ...)."""

    env_class: str
    what: str
    fn: Callable[[], Any]


@attrs.frozen
class EnvFailure:
    """Why a call produced no value: ``kind`` is ``"error"`` or ``"timeout"``."""

    kind: str
    message: str


class EnvRunner:
    """Runs the env calls of one batch (see the module doc)."""

    def __init__(self, *, max_workers: int, timeout_s: float) -> None:
        if max_workers < 0:
            raise ValueError(f"environment.max_env_workers must be >= 0, got {max_workers}")
        if timeout_s <= 0:
            raise ValueError(f"environment.step_timeout_s must be > 0, got {timeout_s}")
        self.max_workers = max_workers
        self.timeout_s = timeout_s
        self.num_errors = 0
        self.num_timeouts = 0
        self._logged: set[str] = set()
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the running loop

    async def call(self, call: EnvCall) -> Any:
        """The call's return value, or :class:`EnvFailure`."""
        return await self._call(call, count=True)

    async def close(self, call: EnvCall) -> None:
        """Run a ``close`` call; a failure is logged (once per batch), not counted."""
        await self._call(call, count=False)

    # -- internals ----------------------------------------------------------------------------------------------

    async def _call(self, call: EnvCall, *, count: bool) -> Any:
        if self.max_workers == 0:
            try:
                return call.fn()
            except Exception as exc:  # noqa: BLE001 - any env error fails only its trajectory
                return self._failure(call, exc, count)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_workers)
        async with self._slots:
            result = _start_thread(call.fn)
            try:
                return await asyncio.wait_for(result, self.timeout_s)
            except TimeoutError:
                return self._failure(call, None, count)
            except Exception as exc:  # noqa: BLE001 - any env error fails only its trajectory
                return self._failure(call, exc, count)

    def _failure(self, call: EnvCall, exc: BaseException | None, count: bool) -> EnvFailure:
        """Record and return the failure of ``call``: ``exc`` raised, or (``None``) it timed out."""
        if exc is None:
            failure = EnvFailure("timeout", f"{call.what} of env '{call.env_class}' took longer than {self.timeout_s}s")
        else:
            failure = EnvFailure("error", f"{call.what} of env '{call.env_class}' failed: {type(exc).__name__}: {exc}")
        if count:
            self.num_errors += failure.kind == "error"
            self.num_timeouts += failure.kind == "timeout"
        label = failure.kind if count else "close"
        if label not in self._logged:
            self._logged.add(label)
            if count:
                note = f"the trajectory gets reward 0; later {failure.kind}s of this batch are only counted"
            else:
                note = "ignored; later close failures of this batch are not logged"
            exc_info = exc if isinstance(exc, Exception) else None
            logger.log(logging.ERROR if count else logging.WARNING, "%s (%s)", failure.message, note, exc_info=exc_info)
        return failure


def _start_thread(fn: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run ``fn`` on a new daemon thread; its result (or exception) arrives in the returned future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, exc: BaseException | None) -> None:
        if future.done():  # timed out (cancelled) meanwhile
            return
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)

    def work() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (fn(), None)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop has closed: nobody waits for this result any more
            pass

    threading.Thread(target=work, name=f"skyrl-env-{next(_thread_numbers)}", daemon=True).start()
    return future


def check_init_output(output: Any, env_class: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``env.init``'s ``(messages, info)``, checked; :class:`EnvOutputError` naming the env otherwise."""
    if not (isinstance(output, tuple) and len(output) == 2):
        raise EnvOutputError(
            f"env '{env_class}': init() must return a (messages, info) tuple, got {type(output).__name__}"
        )
    messages, info = output
    _check_messages(messages, env_class, "init() messages")
    return list(messages), dict(info or {})


def check_step_output(output: Any, env_class: str) -> BaseTextEnvStepOutput:
    """``env.step``'s result as a :class:`BaseTextEnvStepOutput`; :class:`EnvOutputError` naming the env otherwise.

    Accepted: a ``BaseTextEnvStepOutput``, or a mapping with at least ``observations``, ``reward`` and ``done``
    (SkyRL's TypedDict style; ``metadata`` and ``postprocessed_action`` are optional). ``reward`` must be a finite
    real number; ``observations`` a list of ``{"role": str, "content": str}`` messages.
    """
    if isinstance(output, BaseTextEnvStepOutput):
        fields = {name: getattr(output, name) for name in attrs.fields_dict(BaseTextEnvStepOutput)}
    elif isinstance(output, Mapping):
        missing = [key for key in _STEP_KEYS if key not in output]
        if missing:
            raise EnvOutputError(f"env '{env_class}': step() returned a dict without {', '.join(missing)}")
        fields = dict(output)
    else:
        raise EnvOutputError(
            f"env '{env_class}': step() must return a BaseTextEnvStepOutput (or a dict with keys "
            f"{', '.join(_STEP_KEYS)}), got {type(output).__name__}"
        )
    reward = fields["reward"]
    if isinstance(reward, bool) or not isinstance(reward, numbers.Real) or not math.isfinite(reward):
        raise EnvOutputError(f"env '{env_class}': step() reward must be a finite real number, got {reward!r}")
    _check_messages(fields["observations"], env_class, "step() observations")
    postprocessed = fields.get("postprocessed_action")
    if postprocessed is not None and not isinstance(postprocessed, str):
        raise EnvOutputError(f"env '{env_class}': step() postprocessed_action must be a string or None")
    return BaseTextEnvStepOutput(
        observations=list(fields["observations"]),
        reward=float(reward),
        done=bool(fields["done"]),
        metadata=dict(fields.get("metadata") or {}),
        postprocessed_action=postprocessed,
    )


def _check_messages(messages: Any, env_class: str, what: str) -> None:
    if not isinstance(messages, list):
        raise EnvOutputError(f"env '{env_class}': {what} must be a list of messages, got {type(messages).__name__}")
    for message in messages:
        if not (
            isinstance(message, Mapping)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise EnvOutputError(
                f"env '{env_class}': {what} must be {{'role': str, 'content': str}} messages, got {message!r}"
            )
