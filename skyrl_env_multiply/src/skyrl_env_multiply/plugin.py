"""skyrl hook implementations of ``skyrl-env-multiply`` (entry point ``skyrl: multiply``).

Only cheap imports here: the builder imports ``pyarrow`` inside :meth:`MultiplyDatasetBuilder.build`.
"""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_env_multiply.dataset import MultiplyDataConfig, MultiplyDatasetBuilder
from skyrl_env_multiply.env import MultiplyEnv, MultiplyEnvConfig


@hookimpl
def register_environments(register):
    register("multiply", MultiplyEnv, config_cls=MultiplyEnvConfig,
             description="n-digit multiplication, answer in \\boxed{}")


@hookimpl
def register_datasets(register):
    register("multiply", MultiplyDatasetBuilder(), config_cls=MultiplyDataConfig,
             description="synthetic n-digit multiplication problems")
