"""Training strategies: how a worker group holds, shards and steps a model (``ddp`` built in)."""

from skyrl_core.strategy.base import Strategy

__all__ = ["Strategy"]
