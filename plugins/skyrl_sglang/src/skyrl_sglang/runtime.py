"""What an SGLang engine needs on this machine, checked in seconds and reported as one message (exit 2)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from skyrl_core.errors import UserError
from skyrl_sglang import SGLANG_VERSION

INSTALL = f'pip install "skyrl-sglang[engine]" (sglang=={SGLANG_VERSION}, with its CUDA torch)'


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def missing(*, has_sglang: Callable[[], bool] | None = None,
            cuda_devices: Callable[[], int] = _cuda_devices) -> list[str]:
    """What is missing for ``generator.backend=sglang`` here, one line each (empty: nothing)."""
    has_sglang = has_sglang or (lambda: importlib.util.find_spec("sglang") is not None)
    problems = []
    if not has_sglang():
        problems.append(f"the sglang package is not installed: {INSTALL}")
    if cuda_devices() == 0:
        problems.append("no CUDA GPU is visible (SGLang runs on CUDA GPUs here); on CPU use generator.backend=hf")
    return problems


def require(**probes: Callable) -> None:
    """Raise :class:`UserError` naming everything :func:`missing` finds."""
    problems = missing(**probes)
    if problems:
        raise UserError("generator.backend=sglang cannot start: " + "; ".join(problems))
