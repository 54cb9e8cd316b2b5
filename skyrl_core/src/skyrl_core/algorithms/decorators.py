"""Decorators that register an algorithm function from a plain file passed with ``skyrl run --plugin FILE.py``::

    from skyrl_core import register_advantage_estimator

    @register_advantage_estimator("median_baseline")
    def median_baseline(*, token_level_rewards, response_mask, index, values, config, **kw):
        ...

The function is registered when its module is imported; Ray workers import the same file by module name (it is
listed in ``SKYRL_PLUGIN_FILES``), so nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: (kind, name, function, module) in registration order.
DECORATED: list[tuple[str, str, Callable[..., Any], str]] = []


def _decorator(kind: str, name: str, config_cls: type | None) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        DECORATED.append((kind, name, fn, fn.__module__))
        if config_cls is not None:
            fn.__skyrl_config_cls__ = config_cls  # type: ignore[attr-defined]
        _invalidate_registries()
        return fn

    return wrap


def _invalidate_registries() -> None:
    from skyrl_core.plugins import get_plugin_manager

    get_plugin_manager().invalidate()


def register_advantage_estimator(name: str, *, config_cls: type | None = None) -> Callable[[F], F]:
    """Register the decorated function as advantage estimator ``name``."""
    return _decorator("advantage_estimators", name, config_cls)


def register_policy_loss(name: str, *, config_cls: type | None = None) -> Callable[[F], F]:
    """Register the decorated function as policy loss ``name``."""
    return _decorator("policy_losses", name, config_cls)
