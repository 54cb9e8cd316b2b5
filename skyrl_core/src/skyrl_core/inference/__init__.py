"""Inference engines: the interface every backend implements (``hf`` built in; ``vllm``, ``sglang`` as plugins).

The names below are imported on first use, so that ``skyrl_core.inference.hf_config`` (read while plugins load)
does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time see __getattr__
    from skyrl_core.inference.base import GenerationRequest, GenerationResult, InferenceEngine, SamplingParams

__all__ = ["GenerationRequest", "GenerationResult", "InferenceEngine", "SamplingParams"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from skyrl_core.inference import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
