"""skyrl-fsdp: the ``fsdp2`` training strategy (alias ``fsdp``), PyTorch's ``fully_shard`` per decoder layer.

Installing the distribution registers the strategy with skyrl (entry point group ``skyrl``)::

    pip install skyrl-fsdp
    skyrl run ... trainer.strategy=fsdp2 trainer.fsdp2.fsdp_size=8
"""

from __future__ import annotations

import importlib.metadata as _md

from skyrl_fsdp.config import FSDPConfig

try:
    __version__ = _md.version("skyrl-fsdp")
except _md.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["FSDPConfig", "__version__"]
