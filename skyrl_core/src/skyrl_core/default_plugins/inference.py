"""Built-in plugin: the ``hf`` inference backend (transformers, CPU or GPU; imported on first use)."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register
from skyrl_core.inference.hf_config import HFEngineConfig


@hookimpl
def register_inference_backends(register: Register) -> None:
    register("hf", "skyrl_core.inference.hf:HFEngine", config_cls=HFEngineConfig,
             description="transformers with continuous batching; CPU or GPU")
