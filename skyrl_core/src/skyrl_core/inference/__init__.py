"""Inference engines: the interface every backend implements (``hf`` built in; ``vllm``, ``sglang`` as plugins)."""

from skyrl_core.inference.base import GenerationRequest, GenerationResult, InferenceEngine, SamplingParams

__all__ = ["GenerationRequest", "GenerationResult", "InferenceEngine", "SamplingParams"]
