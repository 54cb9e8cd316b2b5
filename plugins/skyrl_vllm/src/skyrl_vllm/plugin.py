"""Registrations of skyrl-vllm (imports nothing heavy: the targets are loaded on first use)."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register
from skyrl_vllm.config import VLLMConfig


@hookimpl
def register_inference_backends(register: Register) -> None:
    register("vllm", "skyrl_vllm.engine:VLLMEngine", config_cls=VLLMConfig,
             description="vLLM's async engine on CUDA GPUs (pip install 'skyrl-vllm[engine]')")


@hookimpl
def register_weight_sync_backends(register: Register) -> None:
    register("cuda_ipc", "skyrl_vllm.cuda_ipc:CudaIpcTransport",
             description="CUDA IPC handles to the policy's own GPU memory (engine colocated with policy rank 0)")
