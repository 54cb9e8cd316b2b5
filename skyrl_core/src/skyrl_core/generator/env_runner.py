"""Running env code (constructor, ``init``, ``step``, ``get_metrics``, ``close``) so that a bad env fails only its
own trajectory.

An :class:`EnvRunner` lives for one generator batch. :meth:`EnvRunner.run` takes one :class:`EnvCall` per
trajectory and runs them concurrently on a ``ThreadPoolExecutor`` of ``max_workers`` threads; each call gets
``timeout_s`` seconds, counted from when a worker starts it (time waiting in the queue does not count). The result
of a call is its return value or an :class:`EnvFailure`:

- ``"error"``: the call raised, or returned a malformed value (see :func:`check_step_output`,
  :func:`check_init_output`); counted in :attr:`EnvRunner.num_errors`;
- ``"timeout"``: it ran past ``timeout_s``; counted in :attr:`EnvRunner.num_timeouts`. Python cannot stop a
  thread, so the call keeps running in the background and its result is dropped. Because its worker may never come
  back, the calls still queued are moved to a fresh pool. (An env that never returns also delays interpreter exit,
  which joins the pool's threads.)

The first error and the first timeout of a batch are logged on the ``skyrl.env`` logger (with the env class and,
for errors, the traceback); later ones are only counted. ``close`` failures (:meth:`EnvRunner.close_all`) are
logged once per batch and never counted or raised; ``close`` is called even on an env whose call timed out (that
call may still be running, and closing the env is the best chance to stop it).

``max_workers == 0`` runs every call inline in the calling thread, one after the other: errors are still caught,
but no time limit can be enforced.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import attrs

from skyrl_core.env.base import BaseTextEnvStepOutput

logger = logging.getLogger("skyrl.env")

_STEP_KEYS = ("observations", "reward", "done")


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


class _Timed:
    """Runs a call in a worker and records when it started."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.started: float | None = None

    def __call__(self) -> Any:
        self.started = time.monotonic()
        return self.fn()


class EnvRunner:
    """Runs env calls for one batch; use as a context manager (the pool is shut down without waiting on exit)."""

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
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="skyrl-env") if max_workers else None

    def __enter__(self) -> EnvRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, calls: Sequence[EnvCall]) -> list[Any]:
        """Each call's return value or :class:`EnvFailure`, in call order."""
        return self._run(calls, count=True)

    def close_all(self, calls: Sequence[EnvCall]) -> None:
        """Run ``close`` calls; failures are logged (once per batch), not counted."""
        self._run(calls, count=False)

    # -- internals ----------------------------------------------------------------------------------------------

    def _run(self, calls: Sequence[EnvCall], *, count: bool) -> list[Any]:
        if self._pool is None:
            return [self._inline(call, count) for call in calls]
        results: list[Any] = [None] * len(calls)
        pending: dict[Future, tuple[int, _Timed]] = {}

        def submit(index: int) -> None:
            timed = _Timed(calls[index].fn)
            pending[self._pool.submit(timed)] = (index, timed)

        for index in range(len(calls)):
            submit(index)
        while pending:
            deadlines = [t.started + self.timeout_s for _, t in pending.values() if t.started is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else self.timeout_s
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                index, _ = pending.pop(future)
                exc = future.exception()
                results[index] = future.result() if exc is None else self._failure(calls[index], exc, count)
            now = time.monotonic()
            expired = [
                f for f, (_, t) in pending.items() if t.started is not None and now - t.started >= self.timeout_s
            ]
            for future in expired:
                index, _ = pending.pop(future)
                results[index] = self._failure(calls[index], None, count)
            if expired:
                queued = [future for future in pending if future.cancel()]
                self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="skyrl-env")
                for future in queued:
                    submit(pending.pop(future)[0])
        return results

    def _inline(self, call: EnvCall, count: bool) -> Any:
        try:
            return call.fn()
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
