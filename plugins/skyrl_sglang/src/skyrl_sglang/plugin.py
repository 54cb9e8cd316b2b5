"""Registrations of skyrl-sglang (imports nothing heavy: the engine is loaded on first use)."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register
from skyrl_sglang.config import SGLangConfig


@hookimpl
def register_inference_backends(register: Register) -> None:
    register("sglang", "skyrl_sglang.engine:SGLangEngine", config_cls=SGLangConfig,
             description="SGLang's offline engine on CUDA GPUs (pip install 'skyrl-sglang[engine]')")
