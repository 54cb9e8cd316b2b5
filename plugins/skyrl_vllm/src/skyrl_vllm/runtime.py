"""What a vLLM engine needs on this machine, checked in seconds and reported as one message (exit 2)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from skyrl_core.errors import UserError
from skyrl_vllm import VLLM_VERSION

INSTALL = f'pip install "skyrl-vllm[engine]" (vllm=={VLLM_VERSION}, with its CUDA torch)'


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def missing(*, has_vllm: Callable[[], bool] | None = None,
            cuda_devices: Callable[[], int] = _cuda_devices) -> list[str]:
    """What is missing for ``generator.backend=vllm`` here, one line each (empty: nothing)."""
    has_vllm = has_vllm or (lambda: importlib.util.find_spec("vllm") is not None)
    problems = []
    if not has_vllm():
        problems.append(f"the vllm package is not installed: {INSTALL}")
    if cuda_devices() == 0:
        problems.append("no CUDA GPU is visible (vLLM runs on CUDA GPUs only); on CPU use generator.backend=hf")
    return problems


def require(**probes: Callable) -> None:
    """Raise :class:`UserError` naming everything :func:`missing` finds."""
    problems = missing(**probes)
    if problems:
        raise UserError("generator.backend=vllm cannot start: " + "; ".join(problems))
