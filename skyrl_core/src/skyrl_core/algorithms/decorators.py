"""Decorators that register an algorithm function from a plain file passed with ``skyrl run --plugin FILE.py``::

    from skyrl_core import register_advantage_estimator

    @register_advantage_estimator("median_baseline")
    def median_baseline(*, token_level_rewards, response_mask, index, values, config, **kw):
        ...

The decorator gives the function's module a ``register_advantage_estimators`` hook implementation (under a private
attribute name, so the module may still define its own hooks) that registers every function decorated in it. The
function is therefore registered through the same hook as any plugin's, when its module is registered as a plugin:
a ``--plugin`` file, or the module an entry point of group ``skyrl`` names. Ray workers import the same file by
module name (it is listed in ``SKYRL_PLUGIN_FILES``), so nothing is pickled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import pluggy

from skyrl_core.hookspecs import KIND_BY_NAME, PROJECT_NAME

F = TypeVar("F", bound=Callable[..., Any])

_hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


def _module_hook(module_name: str, kind: str) -> Callable[..., None]:
    """The hook implementation of ``kind`` that ``module_name`` carries for its decorated functions."""
    module = sys.modules[module_name]
    attribute = f"_skyrl_decorated_{kind}"
    impl = getattr(module, attribute, None)
    if impl is None:
        decorated: list[tuple[str, Callable[..., Any], type | None]] = []

        def impl(register: Any) -> None:
            for name, fn, config_cls in decorated:
                register(name, fn, config_cls=config_cls, description=fn.__doc__)

        impl.decorated = decorated  # type: ignore[attr-defined]
        setattr(module, attribute, _hookimpl(specname=KIND_BY_NAME[kind].hook)(impl))
    return impl


def _decorator(kind: str, name: str, config_cls: type | None) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        _module_hook(fn.__module__, kind).decorated.append((name, fn, config_cls))  # type: ignore[attr-defined]
        return fn

    return wrap


def register_advantage_estimator(name: str, *, config_cls: type | None = None) -> Callable[[F], F]:
    """Register the decorated function as advantage estimator ``name`` (its section:
    ``trainer.algorithm.estimators.<name>``)."""
    return _decorator("advantage_estimators", name, config_cls)


def register_policy_loss(name: str, *, config_cls: type | None = None) -> Callable[[F], F]:
    """Register the decorated function as policy loss ``name`` (its section: ``trainer.algorithm.<name>``)."""
    return _decorator("policy_losses", name, config_cls)
