"""Pure translations from skyrl's settings to vLLM's: engine arguments and per-request sampling parameters.

Log-prob convention. skyrl's engines report ``log_softmax(logits / T)`` of each sampled token over the full
distribution (T=1 when T=0; see :mod:`skyrl_core.inference.base`). vLLM's sampler (``vllm/v1/sample/sampler.py``,
``vllm/v1/worker/gpu/sample/sampler.py``) applies, in order: allowed/bad-word masks and logit bias, penalties
(repetition/frequency/presence), temperature, min-p, top-k/top-p, then samples. With
``logprobs_mode="processed_logprobs"`` the reported log-prob is taken after all of them, so it equals skyrl's
convention exactly when no penalty and no truncation is active (``repetition_penalty == 1``, ``top_k`` off,
``top_p == 1``, ``min_p == 0``); with truncation it is renormalised over the kept tokens. The default mode
(``raw_logprobs``) is taken before temperature, which is wrong for any T != 1, so it is never used.
:func:`logprob_contract_problems` names the settings that break the convention (the preflight refuses them).
"""

from __future__ import annotations

from typing import Any

from skyrl_core.errors import UserError
from skyrl_core.inference.base import SamplingParams

#: Engine-level log-prob mode: after temperature (see the module doc).
LOGPROBS_MODE = "processed_logprobs"

#: The skyrl-side names of the knobs the engine takes as constructor keywords, and their defaults.
KNOB_DEFAULTS: dict[str, Any] = {
    "gpu_memory_utilization": 0.8,
    "max_num_seqs": 1024,
    "max_num_batched_tokens": 8192,
    "enable_prefix_caching": True,
    "enforce_eager": True,
}

#: Engine arguments skyrl sets itself; ``engine_init_kwargs`` may not override them.
RESERVED = frozenset({"model", "tokenizer", "dtype", "seed", "tensor_parallel_size", "logprobs_mode",
                      "enable_sleep_mode", "worker_extension_cls", "skip_tokenizer_init"})

WORKER_EXTENSION = "skyrl_vllm.worker_ext.SkyrlWorkerExtension"


def engine_args(
    *,
    model_path: str,
    dtype: str,
    seed: int,
    tensor_parallel_size: int,
    knobs: dict[str, Any],
    max_model_len: int | None,
    extra: dict[str, Any],
    known_fields: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.AsyncEngineArgs`` for one engine.

    ``extra`` (``generator.engine_init_kwargs`` minus the knobs) passes through untouched; a key that skyrl sets
    itself, or (when ``known_fields`` is given) one that ``AsyncEngineArgs`` does not have, is refused.
    """
    clash = sorted(RESERVED & set(extra))
    if clash:
        raise UserError(f"generator.engine_init_kwargs sets {', '.join(clash)}, which the vllm backend sets "
                        "itself (from trainer.policy.model.path, generator.model_dtype, trainer.seed and "
                        "generator.inference_engine_tensor_parallel_size); remove them")
    if known_fields is not None:
        unknown = sorted(set(extra) - known_fields)
        if unknown:
            raise UserError(f"generator.engine_init_kwargs has {', '.join(unknown)}, which vllm's AsyncEngineArgs "
                            "does not take; check the spelling against the vLLM version in docs/backends.md")
    args: dict[str, Any] = {
        "model": model_path,
        "dtype": dtype,
        "seed": seed,
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": knobs["gpu_memory_utilization"],
        "max_num_seqs": knobs["max_num_seqs"],
        "max_num_batched_tokens": knobs["max_num_batched_tokens"],
        "enable_prefix_caching": knobs["enable_prefix_caching"],
        "enforce_eager": knobs["enforce_eager"],
        "logprobs_mode": LOGPROBS_MODE,
        "enable_sleep_mode": True,
        "worker_extension_cls": WORKER_EXTENSION,
    }
    if max_model_len is not None:
        args["max_model_len"] = max_model_len
    args.update(extra)
    return args


def split_knobs(engine_init_kwargs: dict[str, Any], **given: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(knobs, extra)``: each knob from ``given`` (the constructor keywords; ``None`` = not given), else from
    ``engine_init_kwargs``, else its default; ``extra`` is the rest of ``engine_init_kwargs``."""
    extra = dict(engine_init_kwargs)
    knobs = {}
    for name, default in KNOB_DEFAULTS.items():
        from_kwargs = extra.pop(name, None)
        value = given.get(name)
        knobs[name] = value if value is not None else (from_kwargs if from_kwargs is not None else default)
    return knobs, extra


def sampling_kwargs(sampling: SamplingParams, *, request_logprobs: bool = True) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one skyrl request.

    ``top_k=-1`` (off) becomes vLLM's 0 (off); ``logprobs=0`` asks for the sampled token's log-prob only; stop
    strings need detokenisation, which is otherwise skipped; ``include_stop_str_in_output`` keeps the token that
    completed a stop string (skyrl's results include it).
    """
    stop = [s for s in sampling.stop or () if s]
    return {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": 0 if sampling.top_k in (-1, 0) else sampling.top_k,
        "min_p": sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
        "max_tokens": sampling.max_tokens,
        "stop": stop or None,
        "stop_token_ids": list(sampling.stop_token_ids or ()) or None,
        "include_stop_str_in_output": True,
        "detokenize": bool(stop),
        "logprobs": 0 if request_logprobs else None,
    }


def probe_kwargs() -> dict[str, Any]:
    """Sampling parameters of :meth:`VLLMEngine.probe_logprobs`: one greedy token and the prompt's log-probs
    (prompt log-probs are the same in every ``logprobs_mode``: no sampling step touches them)."""
    return {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0, "detokenize": False}


def logprob_contract_problems(sampling: Any) -> list[str]:
    """The settings of ``sampling`` (``generator.sampling_params``) under which vLLM's log-probs are not
    ``log_softmax(logits / T)`` of the full distribution (see the module doc), one line each."""
    neutral = {"top_k": (-1, 0), "top_p": (1.0,), "min_p": (0.0,), "repetition_penalty": (1.0,)}
    return [f"generator.sampling_params.{key}={getattr(sampling, key)}" for key, values in neutral.items()
            if getattr(sampling, key) not in values]
