"""Driver-side checks of a run that selects ``generator.backend=vllm``, before any actor starts.

Each refusal is one :class:`~skyrl_core.errors.UserError` (exit 2) naming the setting and the fix:

- vLLM or a CUDA GPU is missing (:mod:`skyrl_vllm.runtime`);
- ``generator.sampling_params`` asks for log-probs with a penalty or truncation, under which vLLM's log-probs are
  not the full tempered distribution the trainer computes (:func:`skyrl_vllm.args.logprob_contract_problems`);
- ``generator.weight_sync_backend=ray``: the receivers run in vLLM's worker processes, which are not Ray workers;
- ``generator.weight_sync_backend=cuda_ipc`` with engines on more than the one GPU of policy rank 0.
"""

from __future__ import annotations

from typing import Any

from skyrl_core.errors import UserError
from skyrl_vllm import runtime
from skyrl_vllm.args import logprob_contract_problems


def problems(config: Any) -> list[str]:
    """Everything :func:`check` refuses in ``config`` (a resolved ``SkyRLConfig``), except the runtime."""
    generator = config.generator
    found = []
    sampling = generator.sampling_params
    truncation = logprob_contract_problems(sampling)
    if sampling.logprobs is not None and truncation:
        found.append(f"{', '.join(truncation)} with generator.backend=vllm is not supported yet: vLLM reports "
                     "log-probs after penalties and top-k/top-p/min-p truncation, not of the full tempered "
                     "distribution the trainer uses; set them to their neutral values (top_k=-1, top_p=1.0, "
                     "min_p=0.0, repetition_penalty=1.0), or generator.sampling_params.logprobs=null")
    transport = generator.weight_sync_backend
    if transport == "ray":
        found.append("generator.weight_sync_backend=ray is not supported yet by the vllm backend (its weight "
                     "receivers run in vLLM's worker processes, outside Ray); use nccl (engines on their own GPUs) "
                     "or cuda_ipc (one GPU shared with policy rank 0)")
    engine_gpus = generator.num_inference_engines * generator.inference_engine_tensor_parallel_size
    if transport == "cuda_ipc" and (engine_gpus > 1 or not config.trainer.placement.colocate_all):
        found.append(f"generator.weight_sync_backend=cuda_ipc needs every engine on the GPU of policy rank 0 "
                     f"(trainer.placement.colocate_all=true and num_inference_engines * "
                     f"inference_engine_tensor_parallel_size = 1, here {engine_gpus}); use nccl with "
                     "colocate_all=false for more engine GPUs")
    return found


def check(config: Any) -> None:
    """Raise one :class:`UserError` listing every problem of ``config`` for the vllm backend."""
    runtime.require()
    found = problems(config)
    if found:
        raise UserError("generator.backend=vllm: " + "; ".join(found))
