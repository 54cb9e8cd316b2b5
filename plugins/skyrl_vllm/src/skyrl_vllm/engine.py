"""``VLLMEngine``: skyrl's inference-engine interface over vLLM's ``AsyncLLM`` (one per engine actor).

Construction: :mod:`skyrl_vllm.runtime` checks that vLLM and a CUDA GPU are there (one clear error otherwise), then
``AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_args(...)))`` (:mod:`skyrl_vllm.args`), with sleep mode on,
``logprobs_mode="processed_logprobs"`` and :class:`~skyrl_vllm.worker_ext.SkyrlWorkerExtension` in every worker.

Requests: each ``generate`` submits ``{"prompt_token_ids": ...}`` with ``RequestOutputKind.DELTA`` and a request id
(the caller's or a fresh one) and consumes vLLM's stream in a task of its own, appending tokens and log-probs as
they come (:class:`~skyrl_vllm.outputs.Completion`). ``abort`` cancels those tasks: vLLM aborts a request whose
stream is cancelled, and the request returns what it had with ``stop_reason="abort"``.

Memory: ``sleep(level)`` aborts running requests, resets the prefix cache (vLLM issue 17103: stale prefix blocks
after a wake) and calls ``AsyncLLM.sleep(level)``; ``wake_up(tags)`` passes the tags through
(:mod:`skyrl_vllm.memory`). Weights: ``collective_rpc`` to the worker extension; ``reset_prefix_cache`` after a
sync (a weight update does not reset it by itself).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from skyrl_core.inference.base import (
    EngineStateError,
    GenerationRequest,
    GenerationResult,
    InferenceEngine,
    SleepState,
)
from skyrl_core.weight_sync.base import WeightSyncInitInfo, WeightUpdateRequest
from skyrl_vllm import memory, preflight, runtime
from skyrl_vllm.args import engine_args, probe_kwargs, sampling_kwargs, split_knobs
from skyrl_vllm.config import VLLMConfig
from skyrl_vllm.outputs import Completion, prompt_logprobs_of
from skyrl_vllm.worker_ext import encode


@attrs.frozen
class VllmApi:
    """The vLLM entry points the engine uses (unit tests pass a fake)."""

    engine_arg_fields: frozenset[str]
    start: Callable[[dict[str, Any]], Any]
    sampling_params: Callable[..., Any]
    delta: Any
    final_only: Any


def load_vllm() -> VllmApi:
    import dataclasses

    import vllm
    from vllm.sampling_params import RequestOutputKind

    def start(args: dict[str, Any]) -> Any:
        return vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**args))

    return VllmApi(engine_arg_fields=frozenset(f.name for f in dataclasses.fields(vllm.AsyncEngineArgs)),
                   start=start, sampling_params=vllm.SamplingParams, delta=RequestOutputKind.DELTA,
                   final_only=RequestOutputKind.FINAL_ONLY)


class VLLMEngine(InferenceEngine):
    """One vLLM engine on ``tensor_parallel_size`` GPUs (see the module doc)."""

    #: Driver-side check of a whole run config before any actor starts (:mod:`skyrl_vllm.preflight`).
    colocated_weight_transport = "cuda_ipc"
    check_run = staticmethod(preflight.check)
    missing = staticmethod(runtime.missing)

    def __init__(
        self,
        *,
        config: VLLMConfig | None = None,
        model_path: str,
        dtype: str = "bfloat16",
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        enable_prefix_caching: bool | None = None,
        enforce_eager: bool | None = None,
        **engine_init_kwargs: Any,
    ) -> None:
        runtime.require()
        config = config or VLLMConfig()
        knobs, extra = split_knobs(engine_init_kwargs, gpu_memory_utilization=gpu_memory_utilization,
                                   max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                                   enable_prefix_caching=enable_prefix_caching, enforce_eager=enforce_eager)
        self._api = load_vllm()
        self.args = engine_args(model_path=model_path, dtype=dtype, seed=seed,
                                tensor_parallel_size=tensor_parallel_size, knobs=knobs,
                                max_model_len=config.max_model_len, extra=extra,
                                known_fields=self._api.engine_arg_fields)
        self._tensor_parallel_size = tensor_parallel_size
        self._llm = self._api.start(self.args)
        self._running: dict[str, asyncio.Task] = {}
        self._state = SleepState()
        self._receivers_ready = False

    @property
    def num_receivers(self) -> int:
        return self._tensor_parallel_size

    # -- generation ---------------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self._require_awake("generate")
        if not request.prompt_token_ids:
            raise ValueError("VLLMEngine.generate: the request has an empty prompt")
        request_id = request.request_id or f"skyrl-{uuid.uuid4().hex}"
        if request_id in self._running:
            raise ValueError(f"VLLMEngine.generate: request id {request_id!r} is already running")
        params = self._api.sampling_params(**sampling_kwargs(request.sampling), output_kind=self._api.delta)
        completion = Completion()
        task = asyncio.ensure_future(self._stream(request.prompt_token_ids, params, request_id, completion))
        self._running[request_id] = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self._running.pop(request_id, None)
        if task.cancelled():
            return completion.result(aborted=True)
        task.result()
        return completion.result(aborted=False)

    async def _stream(self, prompt: list[int], params: Any, request_id: str, completion: Completion) -> None:
        async for output in self._llm.generate({"prompt_token_ids": list(prompt)}, params, request_id):
            completion.add(output)

    async def abort(self, request_ids: Sequence[str] | None = None) -> None:
        ids = list(self._running) if request_ids is None else [i for i in request_ids if i in self._running]
        tasks = [self._running[i] for i in ids]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def probe_logprobs(self, token_ids: list[int]) -> list[float]:
        self._require_awake("probe_logprobs")
        params = self._api.sampling_params(**probe_kwargs(), output_kind=self._api.final_only)
        final = None
        async for output in self._llm.generate({"prompt_token_ids": list(token_ids)}, params,
                                               f"skyrl-probe-{uuid.uuid4().hex}"):
            final = output
        if final is None:
            raise RuntimeError("vLLM returned no output for the log-prob probe")
        return prompt_logprobs_of(final, token_ids)

    # -- memory -------------------------------------------------------------------------------------------------

    async def sleep(self, level: int = 1) -> None:
        state = memory.after_sleep(level)
        await self.abort()
        await self._llm.reset_prefix_cache()
        await self._llm.sleep(level=level)
        self._state = state

    async def wake_up(self, tags: Sequence[str] | None = None) -> None:
        state = memory.after_wake(self._state, tags)
        await self._llm.wake_up(tags=memory.checked_tags(tags))
        self._state = state

    async def sleep_state(self) -> SleepState:
        return self._state

    async def reset_prefix_cache(self) -> None:
        if not await self._llm.reset_prefix_cache():
            # Running requests hold cached blocks: preempt them (they recompute with the new weights).
            if not await self._llm.reset_prefix_cache(reset_running_requests=True):
                raise RuntimeError("vLLM did not reset its prefix cache")

    # -- weights ------------------------------------------------------------------------------------------------

    async def init_weight_receivers(self, info: WeightSyncInitInfo, first_rank: int) -> None:
        await self._llm.collective_rpc("skyrl_init_receiver", args=(encode(info, first_rank),))
        self._receivers_ready = True

    async def update_weights(self, request: WeightUpdateRequest) -> None:
        if self._state.weights != "device":
            raise EngineStateError(f"VLLMEngine.update_weights: the weights are {self._state.weights}; "
                                   "call wake_up(['weights']) first")
        if not self._receivers_ready:
            raise EngineStateError("VLLMEngine.update_weights before init_weight_receivers")
        await self._llm.collective_rpc("skyrl_update_weights", args=(encode(request),))

    async def shutdown(self) -> None:
        await self.abort()
        if self._receivers_ready:
            await self._llm.collective_rpc("skyrl_close_receiver")
            self._receivers_ready = False
        self._llm.shutdown()

    def _require_awake(self, what: str) -> None:
        if not self._state.awake:
            raise EngineStateError(f"VLLMEngine.{what}: the engine is asleep ({self._state}); call wake_up() first")
