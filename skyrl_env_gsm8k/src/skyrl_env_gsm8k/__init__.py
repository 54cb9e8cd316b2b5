"""skyrl-env-gsm8k: the ``gsm8k`` environment and dataset builder for skyrl.

Installing the distribution registers both with skyrl (entry point group ``skyrl``)::

    pip install skyrl-env-gsm8k
    skyrl data gsm8k --output-dir ~/data/gsm8k
    skyrl run --env gsm8k --algo grpo trainer.policy.model.path=Qwen/Qwen2.5-1.5B-Instruct
"""

from __future__ import annotations

import importlib.metadata as _md

from skyrl_env_gsm8k.dataset import GSM8KDataConfig, Gsm8kDatasetBuilder
from skyrl_env_gsm8k.env import Gsm8kEnv, GSM8KEnvConfig
from skyrl_env_gsm8k.scoring import compute_score, extract_answer, normalize_number

try:
    __version__ = _md.version("skyrl-env-gsm8k")
except _md.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "GSM8KDataConfig",
    "GSM8KEnvConfig",
    "Gsm8kDatasetBuilder",
    "Gsm8kEnv",
    "__version__",
    "compute_score",
    "extract_answer",
    "normalize_number",
]
