"""skyrl hook implementations of ``skyrl-env-gsm8k`` (entry point ``skyrl: gsm8k``).

Only cheap imports here: the env and the builder import ``datasets``/``pyarrow`` inside their methods.
"""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_env_gsm8k.dataset import GSM8KDataConfig, Gsm8kDatasetBuilder
from skyrl_env_gsm8k.env import Gsm8kEnv, GSM8KEnvConfig


@hookimpl
def register_environments(register):
    register("gsm8k", Gsm8kEnv, config_cls=GSM8KEnvConfig, description="GSM8K math word problems, '####' answers")


@hookimpl
def register_datasets(register):
    register("gsm8k", Gsm8kDatasetBuilder(), config_cls=GSM8KDataConfig,
             description="GSM8K (openai/gsm8k from the Hub, or local files with --source)")
