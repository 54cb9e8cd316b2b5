"""Field validators of the config classes: each raises ``ValueError("must be ..., got X")``.

They are attached with ``option(..., check=...)`` and run by :func:`skyrl_core.config.validation.validate_config`,
which prefixes the dotted key and collects every problem (attrs would stop at the first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any, Any, Any], None]


def _check(ok: Callable[[Any], bool], wanted: str) -> Check:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None and not ok(value):
            raise ValueError(f"must be {wanted}, got {value!r}")

    check.wanted = wanted  # type: ignore[attr-defined]
    return check


def at_least(low: float) -> Check:
    return _check(lambda v: v >= low, f">= {low}")


def above(low: float) -> Check:
    return _check(lambda v: v > low, f"> {low}")


def between(low: float, high: float, *, low_open: bool = False) -> Check:
    """``low <= value <= high`` (``low < value`` with ``low_open``)."""
    left = "(" if low_open else "["
    return _check(lambda v: (v > low if low_open else v >= low) and v <= high, f"in {left}{low}, {high}]")


def one_of(*values: Any) -> Check:
    return _check(lambda v: v in values, "one of " + ", ".join(str(v) for v in values))


def minus_one_or_at_least(low: int) -> Check:
    return _check(lambda v: v == -1 or v >= low, f"-1 or >= {low}")


def probabilities(count: int) -> Check:
    return _check(lambda v: len(v) == count and all(0 <= x < 1 for x in v), f"{count} numbers in [0, 1)")
