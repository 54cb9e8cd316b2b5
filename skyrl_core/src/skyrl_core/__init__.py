"""skyrl-core: reinforcement learning for LLMs on Ray, a small core plus plugins.

The stable public API::

    from skyrl_core import hookimpl, BaseTextEnv, BaseTextEnvStepOutput, registry
"""

from __future__ import annotations

import importlib.metadata as _md

import pluggy

from skyrl_core.env import BaseTextEnv, BaseTextEnvStepOutput
from skyrl_core.hookspecs import PROJECT_NAME as _PROJECT_NAME
from skyrl_core.plugins import registry

hookimpl = pluggy.HookimplMarker(_PROJECT_NAME)

try:
    __version__ = _md.version("skyrl-core")
except _md.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def __getattr__(name: str):  # decorators for plain-file plugins live in a module that imports torch lazily
    if name in {"register_advantage_estimator", "register_policy_loss"}:
        from skyrl_core.algorithms import decorators

        return getattr(decorators, name)
    raise AttributeError(name)


__all__ = [
    "BaseTextEnv",
    "BaseTextEnvStepOutput",
    "__version__",
    "hookimpl",
    "register_advantage_estimator",
    "register_policy_loss",
    "registry",
]
