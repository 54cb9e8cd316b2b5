"""Sleep levels and wake tags: skyrl's names to vLLM's, and what is resident after each call (pure).

vLLM (``AsyncLLM.sleep(level)``, ``wake_up(tags)``; ``vllm/v1/worker/gpu_worker.py``): level 1 offloads the weights
to CPU memory and discards the KV cache; level 2 discards both, so every parameter must be written again after
``wake_up(["weights"])`` (the next weight sync does it). ``wake_up`` takes tags from ``("weights", "kv_cache",
"scheduling")``; ``None`` restores everything. skyrl's :data:`~skyrl_core.inference.base.WAKE_TAGS` are the first two,
with the same meaning, so they pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from skyrl_core.inference.base import WAKE_TAGS, SleepState

WEIGHTS_AFTER_SLEEP = {1: "offloaded", 2: "dropped"}


def checked_tags(tags: Sequence[str] | None) -> list[str] | None:
    """``tags`` as a list after checking each is a wake tag (``None``: all)."""
    if tags is None:
        return None
    unknown = [t for t in tags if t not in WAKE_TAGS]
    if unknown:
        raise ValueError(f"unknown wake_up tags {unknown}; use a subset of {list(WAKE_TAGS)}")
    return list(tags)


def after_sleep(level: int) -> SleepState:
    """What is resident after ``sleep(level)``."""
    if level not in WEIGHTS_AFTER_SLEEP:
        raise ValueError(f"sleep level {level} is not supported; use 1 (offload the weights) or 2 (drop them)")
    return SleepState(weights=WEIGHTS_AFTER_SLEEP[level], kv_cache=False)  # type: ignore[arg-type]


def after_wake(state: SleepState, tags: Sequence[str] | None) -> SleepState:
    """What is resident after ``wake_up(tags)`` from ``state``."""
    tags = checked_tags(tags)
    woken = set(WAKE_TAGS if tags is None else tags)
    return attrs.evolve(state, weights="device" if "weights" in woken else state.weights,
                        kv_cache=state.kv_cache or "kv_cache" in woken)
