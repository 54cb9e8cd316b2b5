"""``SGLangEngine``: skyrl's inference-engine interface over SGLang's offline ``Engine`` (one per engine actor).

Everything runs on the engine actor's event loop through the engine's tokenizer manager (``Engine``'s own
synchronous methods drive a loop of their own, which cannot run inside the actor's):
``async_generate(input_ids=..., return_logprob=True, rid=...)``; ``abort_request(rid=...)``;
``release_memory_occupation`` / ``resume_memory_occupation`` with memory tags (:mod:`skyrl_sglang.args`);
``begin_weight_update`` before the first chunk of a sync, ``update_weights_from_tensor`` per chunk (with
``flush_cache=False``), ``end_weight_update`` and ``flush_cache`` in :meth:`SGLangEngine.reset_prefix_cache`, which
the trainer calls after the last chunk (SGLang 0.5.23 refuses weight updates outside such a session).

Weight receiving: one receiver per engine, in the actor process (``num_receivers`` is 1 whatever the tensor
parallel size): it receives each chunk onto the actor's GPU, and ``update_weights_from_tensor`` hands the full
tensors to every tensor-parallel scheduler process as CUDA IPC handles (SGLang's ``MultiprocessingSerializer``);
each one shards them itself. Any registered transport works this way (``nccl``, ``ray``, ``gloo``, ``cuda_ipc``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from skyrl_core.inference.base import (
    WAKE_TAGS,
    EngineStateError,
    GenerationRequest,
    GenerationResult,
    InferenceEngine,
    SleepState,
)
from skyrl_core.weight_sync.base import WeightSyncInitInfo, WeightUpdateRequest
from skyrl_sglang import preflight, runtime
from skyrl_sglang.args import RELEASED_AT_SLEEP, resume_tags, sampling_dict, server_args, split_knobs
from skyrl_sglang.config import SGLangConfig
from skyrl_sglang.outputs import input_logprobs_of, result_of

#: Seconds to wait for aborted requests to come back before releasing memory (SGLang asserts it is idle).
ABORT_DRAIN_S = 30.0
WEIGHTS_AFTER_SLEEP = {1: "offloaded", 2: "dropped"}


@attrs.frozen
class SglangApi:
    """The SGLang entry points the engine uses (unit tests pass a fake)."""

    start: Callable[[dict[str, Any]], Any]
    io: Any
    serialize: Callable[[Any], Any]


def load_sglang() -> SglangApi:
    # Read when SGLang's sampler is imported: set, it reports log-probs before the temperature.
    os.environ["SGLANG_RETURN_ORIGINAL_LOGPROB"] = "false"
    import sglang
    from sglang.srt.managers import io_struct
    from sglang.srt.utils import MultiprocessingSerializer

    return SglangApi(start=lambda args: sglang.Engine(**args), io=io_struct,
                     serialize=MultiprocessingSerializer.serialize)


class SGLangEngine(InferenceEngine):
    """One SGLang engine on ``tensor_parallel_size`` GPUs (see the module doc)."""

    #: Driver-side check of a whole run config before any actor starts (:mod:`skyrl_sglang.preflight`).
    check_run = staticmethod(preflight.check)
    missing = staticmethod(runtime.missing)

    def __init__(
        self,
        *,
        config: SGLangConfig | None = None,
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
        config = config or SGLangConfig()
        knobs, extra = split_knobs(engine_init_kwargs, gpu_memory_utilization=gpu_memory_utilization,
                                   max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                                   enable_prefix_caching=enable_prefix_caching, enforce_eager=enforce_eager)
        self.args = server_args(model_path=model_path, dtype=dtype, seed=seed,
                                tensor_parallel_size=tensor_parallel_size, knobs=knobs,
                                context_length=config.context_length, extra=extra)
        self._api = load_sglang()
        self._engine = self._api.start(self.args)
        self._tensor_parallel_size = tensor_parallel_size
        self._running: dict[str, asyncio.Task] = {}
        self._state = SleepState()
        self._receiver: Any = None
        self._updating = False

    @property
    def _manager(self) -> Any:
        return self._engine.tokenizer_manager

    # -- generation ---------------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self._require_awake("generate")
        if not request.prompt_token_ids:
            raise ValueError("SGLangEngine.generate: the request has an empty prompt")
        rid = request.request_id or f"skyrl-{uuid.uuid4().hex}"
        if rid in self._running:
            raise ValueError(f"SGLangEngine.generate: request id {rid!r} is already running")
        task = asyncio.ensure_future(self._engine.async_generate(
            input_ids=list(request.prompt_token_ids), sampling_params=sampling_dict(request.sampling),
            return_logprob=True, rid=rid))
        self._running[rid] = task
        try:
            output = await task
        finally:
            self._running.pop(rid, None)
        return result_of(output)

    async def abort(self, request_ids: Sequence[str] | None = None) -> None:
        """Ask SGLang to abort the requests; each returns what it had with ``finish_reason`` ``abort``."""
        ids = list(self._running) if request_ids is None else [i for i in request_ids if i in self._running]
        for rid in ids:
            self._manager.abort_request(rid=rid)
        tasks = [self._running[rid] for rid in ids if rid in self._running]
        if tasks:
            await asyncio.wait(tasks, timeout=ABORT_DRAIN_S)

    async def probe_logprobs(self, token_ids: list[int]) -> list[float]:
        self._require_awake("probe_logprobs")
        output = await self._engine.async_generate(
            input_ids=list(token_ids), sampling_params={"max_new_tokens": 1, "temperature": 0.0},
            return_logprob=True, logprob_start_len=0, rid=f"skyrl-probe-{uuid.uuid4().hex}")
        return input_logprobs_of(output, token_ids)

    # -- memory -------------------------------------------------------------------------------------------------

    async def sleep(self, level: int = 1) -> None:
        if level not in WEIGHTS_AFTER_SLEEP:
            raise ValueError(f"sleep level {level} is not supported; use 1 (offload the weights) or 2 (drop them)")
        await self.abort()
        await self._manager.release_memory_occupation(
            self._api.io.ReleaseMemoryOccupationReqInput(tags=list(RELEASED_AT_SLEEP)), None)
        self._state = SleepState(weights=WEIGHTS_AFTER_SLEEP[level], kv_cache=False)  # type: ignore[arg-type]

    async def wake_up(self, tags: Sequence[str] | None = None) -> None:
        sglang_tags = resume_tags(tags)
        woken = set(WAKE_TAGS if tags is None else tags)
        await self._manager.resume_memory_occupation(self._api.io.ResumeMemoryOccupationReqInput(tags=sglang_tags),
                                                     None)
        self._state = attrs.evolve(self._state, weights="device" if "weights" in woken else self._state.weights,
                                   kv_cache=self._state.kv_cache or "kv_cache" in woken)

    async def sleep_state(self) -> SleepState:
        return self._state

    async def reset_prefix_cache(self) -> None:
        """Close the weight-update session if one is open, then flush the radix cache."""
        if self._updating:
            await self._manager.end_weight_update(self._api.io.EndWeightUpdateReqInput(), None)
            self._updating = False
        await self._manager.flush_cache()

    # -- weights ------------------------------------------------------------------------------------------------

    @property
    def num_receivers(self) -> int:
        return 1

    async def init_weight_receivers(self, info: WeightSyncInitInfo, first_rank: int) -> None:
        from skyrl_core.inference.receivers import build_receiver

        receiver = build_receiver(info, first_rank)
        await asyncio.to_thread(receiver.connect)
        self._receiver = receiver

    async def update_weights(self, request: WeightUpdateRequest) -> None:
        import torch

        if self._state.weights != "device":
            raise EngineStateError(f"SGLangEngine.update_weights: the weights are {self._state.weights}; "
                                   "call wake_up(['weights']) first")
        if self._receiver is None:
            raise EngineStateError("SGLangEngine.update_weights before init_weight_receivers")
        if not self._updating:
            await self._manager.begin_weight_update(self._api.io.BeginWeightUpdateReqInput(selector="all"), None)
            self._updating = True
        device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
        # The receiver may reuse its buffer only when its next receive starts: these tensors stay valid until
        # SGLang has loaded them (the call below returns after the load).
        named = await asyncio.to_thread(lambda: list(self._receiver.receive(request, device)))
        payload = [self._api.serialize(named) for _ in range(self._tensor_parallel_size)]
        success, message = await self._manager.update_weights_from_tensor(
            self._api.io.UpdateWeightsFromTensorReqInput(serialized_named_tensors=payload, load_format=None,
                                                         flush_cache=False), None)
        if not success:
            raise RuntimeError(f"SGLang refused a weight update: {message}")

    async def shutdown(self) -> None:
        await self.abort()
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None
        self._engine.shutdown()

    def _require_awake(self, what: str) -> None:
        if not self._state.awake:
            raise EngineStateError(f"SGLangEngine.{what}: the engine is asleep ({self._state}); call wake_up() first")
