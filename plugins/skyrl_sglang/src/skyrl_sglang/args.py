"""Pure translations from skyrl's settings to SGLang's: server arguments, sampling parameters, memory tags.

Knobs (``generator.*``, shared with vLLM) -> ``sglang.Engine`` server arguments:
``gpu_memory_utilization`` -> ``mem_fraction_static`` (the fraction of GPU memory for weights and KV cache);
``max_num_seqs`` -> ``max_running_requests``; ``max_num_batched_tokens`` -> ``chunked_prefill_size`` (tokens per
prefill chunk, SGLang's closest bound on one batch's new tokens); ``enable_prefix_caching`` -> not
``disable_radix_cache``; ``enforce_eager`` -> ``disable_cuda_graph``.

Always set: ``enable_memory_saver`` (``release/resume_memory_occupation`` need it) and ``enable_weights_cpu_backup``
(released weights are kept in CPU memory, so a level-1 sleep keeps them; at level 2 they are rewritten by the next
sync anyway); the tokenizer stays loaded because stop strings are matched on text.

Log-probs. SGLang's sampler (``srt/layers/sampler.py``) divides the logits by the temperature, takes the softmax of
the full distribution and reports its log (``SGLANG_RETURN_ORIGINAL_LOGPROB`` unset), then samples with top-k/top-p/
min-p from that distribution: the reported log-prob is skyrl's ``log_softmax(logits / T)`` before truncation, unlike
vLLM's. Penalties are applied to the logits before that, so ``repetition_penalty != 1`` changes them: the preflight
refuses it (:func:`logprob_contract_problems`). Greedy requests report ``log_softmax(logits)`` (T=1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skyrl_core.errors import UserError
from skyrl_core.inference.base import WAKE_TAGS, SamplingParams

KNOB_DEFAULTS: dict[str, Any] = {
    "gpu_memory_utilization": 0.8,
    "max_num_seqs": 1024,
    "max_num_batched_tokens": 8192,
    "enable_prefix_caching": True,
    "enforce_eager": True,
}

RESERVED = frozenset({"model_path", "dtype", "random_seed", "tp_size", "enable_memory_saver",
                      "enable_weights_cpu_backup", "skip_tokenizer_init"})

#: What ``sleep`` releases (every level: weights are backed up in CPU memory, see the module doc).
RELEASED_AT_SLEEP = ["kv_cache", "weights", "cuda_graph"]
#: skyrl wake tag -> SGLang memory tags (the CUDA-graph pool comes back with the KV cache, before generation).
RESUME_TAGS = {"weights": ["weights"], "kv_cache": ["kv_cache", "cuda_graph"]}


def server_args(
    *,
    model_path: str,
    dtype: str,
    seed: int,
    tensor_parallel_size: int,
    knobs: dict[str, Any],
    context_length: int | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Keyword arguments of ``sglang.Engine`` for one engine; ``extra`` (``engine_init_kwargs`` minus the knobs)
    passes through, except what skyrl sets itself."""
    clash = sorted(RESERVED & set(extra))
    if clash:
        raise UserError(f"generator.engine_init_kwargs sets {', '.join(clash)}, which the sglang backend sets "
                        "itself; remove them")
    args: dict[str, Any] = {
        "model_path": model_path,
        "dtype": dtype,
        "random_seed": seed,
        "tp_size": tensor_parallel_size,
        "mem_fraction_static": knobs["gpu_memory_utilization"],
        "max_running_requests": knobs["max_num_seqs"],
        "chunked_prefill_size": knobs["max_num_batched_tokens"],
        "disable_radix_cache": not knobs["enable_prefix_caching"],
        "disable_cuda_graph": knobs["enforce_eager"],
        "enable_memory_saver": True,
        "enable_weights_cpu_backup": True,
        "skip_tokenizer_init": False,
        "log_level": "error",
    }
    if context_length is not None:
        args["context_length"] = context_length
    args.update(extra)
    return args


def split_knobs(engine_init_kwargs: dict[str, Any], **given: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(knobs, extra)``: each knob from ``given`` (``None`` = not given), else ``engine_init_kwargs``, else its
    default; ``extra`` is the rest of ``engine_init_kwargs``."""
    extra = dict(engine_init_kwargs)
    knobs = {}
    for name, default in KNOB_DEFAULTS.items():
        from_kwargs = extra.pop(name, None)
        value = given.get(name)
        knobs[name] = value if value is not None else (from_kwargs if from_kwargs is not None else default)
    return knobs, extra


def sampling_dict(sampling: SamplingParams) -> dict[str, Any]:
    """SGLang's per-request ``sampling_params`` dict (``max_new_tokens`` defaults to 128 there: always set)."""
    stop = [s for s in sampling.stop or () if s]
    return {
        "n": 1,
        "max_new_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": -1 if sampling.top_k in (-1, 0) else sampling.top_k,
        "min_p": sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
        "stop": stop or None,
        "stop_token_ids": list(sampling.stop_token_ids or ()) or None,
        "no_stop_trim": True,
    }


def resume_tags(tags: Sequence[str] | None) -> list[str] | None:
    """SGLang's memory tags for skyrl's wake tags (``None``: everything)."""
    if tags is None:
        return None
    unknown = [t for t in tags if t not in WAKE_TAGS]
    if unknown:
        raise ValueError(f"unknown wake_up tags {unknown}; use a subset of {list(WAKE_TAGS)}")
    return [sglang_tag for tag in tags for sglang_tag in RESUME_TAGS[tag]]


def logprob_contract_problems(sampling: Any) -> list[str]:
    """Settings of ``generator.sampling_params`` under which SGLang's log-probs differ from skyrl's convention."""
    if sampling.repetition_penalty != 1.0:
        return [f"generator.sampling_params.repetition_penalty={sampling.repetition_penalty}"]
    return []
