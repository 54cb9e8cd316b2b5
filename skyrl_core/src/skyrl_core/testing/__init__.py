"""Test helpers for skyrl plugins: :class:`EnvContract` and :class:`EnvSample` (``docs/plugins/writing-plugins.md``).

They are imported on first use, so importing ``skyrl_core.testing.tiny_model`` (``skyrl model tiny``) needs no pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time see __getattr__
    from skyrl_core.testing.env_contract import EnvContract, EnvSample

__all__ = ["EnvContract", "EnvSample"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from skyrl_core.testing import env_contract

        return getattr(env_contract, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
