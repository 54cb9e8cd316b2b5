"""skyrl-env-multiply: the ``multiply`` environment and its synthetic dataset (SkyRL's new-environment tutorial).

Installing the distribution registers both with skyrl (entry point group ``skyrl``)::

    pip install skyrl-env-multiply
    skyrl data multiply --output-dir ~/data/multiply --num-digits 2
    skyrl run --env multiply --algo grpo trainer.policy.model.path=Qwen/Qwen2.5-0.5B-Instruct
"""

from __future__ import annotations

import importlib.metadata as _md

from skyrl_env_multiply.dataset import MultiplyDataConfig, MultiplyDatasetBuilder
from skyrl_env_multiply.env import MultiplyEnv, MultiplyEnvConfig

try:
    __version__ = _md.version("skyrl-env-multiply")
except _md.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["MultiplyDataConfig", "MultiplyDatasetBuilder", "MultiplyEnv", "MultiplyEnvConfig", "__version__"]
