"""skyrl-deepspeed: the ``deepspeed`` training strategy (ZeRO stages 1, 2 and 3).

Installing the distribution registers the strategy with skyrl (entry point group ``skyrl``)::

    pip install skyrl-deepspeed
    skyrl run ... trainer.strategy=deepspeed trainer.deepspeed.deepspeed_config.zero_optimization.stage=3
"""

from __future__ import annotations

import importlib.metadata as _md

from skyrl_deepspeed.config import DeepSpeedConfig

try:
    __version__ = _md.version("skyrl-deepspeed")
except _md.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["DeepSpeedConfig", "__version__"]
