"""The built-in ``hf`` inference backend: a transformers causal LM with continuous batching, on CPU or CUDA.

Continuous batching. Every :meth:`HFEngine.generate` call queues one request and awaits its result. A decode loop
(an asyncio task that runs while there is work) owns the running batch: before each step the queued requests join
it (their prompts are prefilled, then their keys and values join the batch's cache) and finished rows leave it
(see :mod:`skyrl_core.inference.hf_batch`). Requests with different sampling parameters share one batch: every
row is sampled with its own parameters (see :mod:`skyrl_core.inference.hf_sampling`). All model work (decode
steps, prefills, weight updates, probes) runs on one compute thread, so the event loop keeps accepting requests
while the model computes and model work never overlaps. ``generator.hf.max_batch_size`` caps the running rows.

Prefix cache. The prefill of a prompt (its keys, values and next-token logits) is kept, keyed by the prompt's
token ids, up to ``generator.hf.prefix_cache_tokens`` tokens (least recently used evicted), so the n samples of a
GRPO group share one prefill even when they arrive as separate requests. Only whole prompts match (a multi-turn
prompt that extends a cached one is prefilled in full). ``reset_prefix_cache()``, every weight update and
``sleep`` empty it.

Randomness and determinism. Each request gets its own ``torch.Generator``, seeded with the request's ``seed`` when
it has one, else from a generator seeded once with ``seed`` at construction and advanced once per request in
arrival order. So a row's draws depend only on its
logits and on its place in the arrival order, not on which rows it shared a batch with. Guaranteed: greedy
requests give the argmax at every step whatever else is in the batch (rows are independent; padding is masked
exactly), and two engines with the same seed given the same requests in the same order and batch composition
sample the same tokens. Not guaranteed: bit-identical logits across different batch compositions (matrix kernels
may sum in a different order for another number of rows), so sampled tokens can in rare cases differ when the same
requests arrive with other timing.

Log-prob convention (see :mod:`skyrl_core.inference.base`): ``log_softmax(logits / T)`` at the sampled token over
the full distribution, before the repetition penalty and any truncation, with ``T = 1`` when ``T == 0``.

Precision: ``dtype="bfloat16"`` computes like the trainer's bf16 autocast (bf16 linear layers, everything else in
fp32; see :mod:`skyrl_core.inference.hf_precision`); other dtypes cast the whole model.

Memory: ``sleep(1)`` ends running requests (``"abort"``), drops the batch and the prefix cache and moves the
weights to CPU (nothing to move on CPU); ``sleep(2)`` also drops the weights (parameters go to the ``meta``
device; buffers such as rotary frequencies are kept on CPU). ``wake_up(["weights"])`` brings them back; after a
level-2 sleep every parameter must be received again (``update_weights``) before the engine generates or probes.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from skyrl_core.errors import UserError
from skyrl_core.inference.base import (
    WAKE_TAGS,
    EngineStateError,
    GenerationRequest,
    GenerationResult,
    InferenceEngine,
    SleepState,
)
from skyrl_core.inference.hf_batch import DecodeBatch, Row
from skyrl_core.inference.hf_config import HFEngineConfig
from skyrl_core.inference.hf_kv import PrefixCache
from skyrl_core.inference.hf_precision import cast_linear_layers
from skyrl_core.inference.hf_sampling import RowSampling
from skyrl_core.inference.hf_weights import ModelWeights
from skyrl_core.inference.receivers import build_receiver
from skyrl_core.mixed_precision import bf16_autocast, run_output_head_in_float32
from skyrl_core.weight_sync.base import WeightReceiver, WeightSyncInitInfo, WeightUpdateRequest


class HFEngine(InferenceEngine):
    """A Hugging Face ``AutoModelForCausalLM`` in eval mode, generating with continuous batching.

    ``config`` is the ``generator.hf`` section (:class:`~skyrl_core.inference.hf_config.HFEngineConfig`) or ``None``
    for its defaults; ``device`` (an engine_init_kwargs key) overrides the default (CUDA when available).
    """

    supports_cpu = True

    def __init__(self, *, model_path: str, dtype: str = "float32", seed: int = 0, tensor_parallel_size: int = 1,
                 config: HFEngineConfig | None = None, device: str | None = None, max_num_seqs: int | None = None,
                 enable_prefix_caching: bool | None = None, gpu_memory_utilization: float | None = None,
                 max_num_batched_tokens: int | None = None, enforce_eager: bool | None = None) -> None:
        if tensor_parallel_size != 1:
            raise UserError(f"generator.inference_engine_tensor_parallel_size={tensor_parallel_size} is not "
                            "supported yet by the hf backend; set it to 1 or use the vllm backend")
        config = attrs.evolve(config or HFEngineConfig())
        if max_num_seqs is not None:  # generator.max_num_seqs caps the running rows too
            config.max_batch_size = min(max_num_seqs, config.max_batch_size or max_num_seqs)
        if enable_prefix_caching is False:
            config.prefix_cache_tokens = 0
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch_dtype = _torch_dtype(dtype)
        self.autocast = torch_dtype == torch.bfloat16  # see skyrl_core.inference.hf_precision
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32 if self.autocast else torch_dtype)
        if self.autocast:
            cast_linear_layers(model, torch.bfloat16, keep=model.get_output_embeddings())
            run_output_head_in_float32(model)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        pad_id = next(i for i in (self.tokenizer.pad_token_id, *sorted(self.eos_ids), 0) if i is not None)
        self.max_batch_size = config.max_batch_size
        self.weights = ModelWeights(self.model, self.device)
        self.batch = DecodeBatch(forward=self._forward, tokenizer=self.tokenizer, pad_id=pad_id, device=self.device,
                                 prefix=PrefixCache(config.prefix_cache_tokens))
        # Recent transformers 5 releases name the cache argument ``cache`` (``past_key_values`` deprecated).
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._seeds = torch.Generator().manual_seed(seed)
        self._compute = ThreadPoolExecutor(1, thread_name_prefix="skyrl-hf-compute")
        self._waiting: list[Row] = []
        self._decoding: asyncio.Task[None] | None = None
        self._kv_awake = True
        self._receiver: WeightReceiver | None = None
        self._closed = False

    @property
    def weight_transfer_dtype(self) -> str | None:
        """fp32 in bf16 mode: the fp32 parameters take the trainer's exact values, linear layers round them."""
        return "float32" if self.autocast else None

    @staticmethod
    def check_run(config: Any) -> None:
        """The GPU-memory knobs of vllm/sglang mean nothing here: refuse values other than the defaults."""
        from skyrl_core.config.schema import GeneratorConfig

        defaults = {f.name: f.default for f in attrs.fields(GeneratorConfig)}
        generator = config.generator
        found = [f"generator.{key}={getattr(generator, key)!r}" for key in
                 ("gpu_memory_utilization", "max_num_batched_tokens", "enforce_eager")
                 if getattr(generator, key) != defaults[key]]
        if found:
            raise UserError(f"{', '.join(found)}: not supported by generator.backend=hf (it reserves no GPU memory "
                            "and has no CUDA graphs); remove them, or use generator.backend=vllm or sglang")

    # -- generation ---------------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self._check_can_generate()
        if not request.prompt_token_ids:
            raise ValueError("HFEngine.generate: the request has an empty prompt")
        sampling = request.sampling
        if sampling.max_tokens <= 0:
            return GenerationResult(token_ids=[], logprobs=[], stop_reason="length")
        seed = request.seed if request.seed is not None else int(torch.randint(2**62, (1,), generator=self._seeds))
        generator = torch.Generator(self.device).manual_seed(seed) if sampling.temperature > 0 else None
        row = Row(
            request_id=request.request_id,
            prompt=tuple(request.prompt_token_ids),
            sampling=RowSampling(params=sampling, generator=generator),
            stop_ids=self.eos_ids | frozenset(sampling.stop_token_ids or ()),
            stops=[s for s in sampling.stop or () if s],
            future=asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(row)
        if self._decoding is None or self._decoding.done():
            self._decoding = asyncio.create_task(self._decode_loop())
        return await row.future  # cancelling the caller cancels the future: the row leaves at the next step

    async def _decode_loop(self) -> None:
        """Step the batch while rows run or wait; answer each row when it leaves."""
        admitted: list[Row] = []
        try:
            while self._waiting or self.batch.rows:
                queued, self._waiting = self._waiting, []
                for row in queued:
                    if row.aborted and not row.future.done():
                        row.future.set_result(row.result())
                queued = [row for row in queued if not row.future.done()]
                dropped = [row for row in self.batch.rows if row.aborted or row.future.done()]
                room = len(queued) if self.max_batch_size is None else max(
                    0, self.max_batch_size - len(self.batch.rows) + len(dropped))
                admitted, self._waiting = queued[:room], queued[room:] + self._waiting
                for row in await self._run(self.batch.step, admitted, dropped):
                    if not row.future.done():
                        row.future.set_result(row.result())
        except BaseException as exc:
            rows, self._waiting = [*admitted, *self.batch.rows, *self._waiting], []
            self._compute.submit(self.batch.clear)  # after any step still running on the compute thread
            for row in rows:
                if not row.future.done():
                    row.future.set_exception(exc if isinstance(exc, Exception) else EngineStateError("engine stopped"))
            if not isinstance(exc, Exception):
                raise

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 cache: DynamicCache) -> torch.Tensor:
        """Run ids through the model, extending ``cache``; the float32 logits of the last position."""
        with bf16_autocast(self.device, self.autocast):
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             logits_to_keep=1, **{self._cache_arg: cache})
        return out.logits[:, -1, :].float()

    async def abort(self, request_ids: Sequence[str] | None = None) -> None:
        wanted = None if request_ids is None else set(request_ids)
        rows = [r for r in [*self.batch.rows, *self._waiting] if wanted is None or r.request_id in wanted]
        for row in rows:
            row.aborted = True
        pending = [row.future for row in rows if not row.future.done()]
        if pending:
            await asyncio.wait(pending)  # the decode loop answers them at its next step

    async def _drained(self) -> None:
        """Wait until the decode loop has stopped."""
        if self._decoding is not None and not self._decoding.done():
            await asyncio.wait([self._decoding])

    # -- memory -------------------------------------------------------------------------------------------------

    async def sleep(self, level: int = 1) -> None:
        if level not in (1, 2):
            raise ValueError(f"HFEngine.sleep: level must be 1 or 2, got {level}")
        self._check_open()
        await self.abort()
        await self._drained()
        await self._run(self.batch.clear)
        self._kv_awake = False
        await self._run(self.weights.drop if level == 2 else self.weights.offload)

    async def wake_up(self, tags: Sequence[str] | None = None) -> None:
        self._check_open()
        tags = list(WAKE_TAGS if tags is None else tags)
        unknown = [t for t in tags if t not in WAKE_TAGS]
        if unknown:
            raise ValueError(f"HFEngine.wake_up: unknown tags {unknown}; valid: {list(WAKE_TAGS)}")
        if "weights" in tags:
            await self._run(self.weights.restore)
        if "kv_cache" in tags:
            self._kv_awake = True

    async def sleep_state(self) -> SleepState:
        return SleepState(weights=self.weights.state, kv_cache=self._kv_awake)

    async def reset_prefix_cache(self) -> None:
        await self._run(self.batch.prefix.clear)

    @property
    def prefix_cache_tokens(self) -> int:
        """Prompt tokens whose prefill the prefix cache holds now."""
        return self.batch.prefix.tokens

    # -- weights ------------------------------------------------------------------------------------------------

    async def init_weight_receivers(self, info: WeightSyncInitInfo, first_rank: int) -> None:
        self._check_open()
        receiver = build_receiver(info, first_rank)
        await self._run(receiver.connect)
        self._receiver = receiver

    async def update_weights(self, request: WeightUpdateRequest) -> None:
        self._check_open()
        if self._receiver is None:
            raise EngineStateError("HFEngine.update_weights: call init_weight_receivers first")
        receiver = self._receiver

        def apply() -> None:
            self.weights.load(receiver.receive(request, self.device))
            self.batch.prefix.clear()

        await self._run(apply)

    async def probe_logprobs(self, token_ids: list[int]) -> list[float]:
        self._check_open()
        self.weights.check_usable("probe_logprobs")

        def probe() -> list[float]:
            with torch.no_grad(), bf16_autocast(self.device, self.autocast):
                ids = torch.tensor([token_ids], device=self.device)
                logits = self.model(input_ids=ids).logits[0, :-1].float()
                return torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).squeeze(-1).tolist()

        return await self._run(probe)

    async def state_dict(self) -> dict[str, Any]:
        self._check_open()
        return await self._run(self.weights.state_dict)

    async def shutdown(self) -> None:
        if self._closed:
            return
        await self.abort()
        await self._drained()
        if self._receiver is not None:
            self._receiver.close()
        self._closed = True
        await self._run(self.weights.release)
        self.model = None
        self._compute.shutdown(wait=True)

    # -- helpers ------------------------------------------------------------------------------------------------

    async def _run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on the compute thread."""
        return await asyncio.get_running_loop().run_in_executor(self._compute, fn, *args)

    def _check_open(self) -> None:
        if self._closed:
            raise EngineStateError("HFEngine has been shut down")

    def _check_can_generate(self) -> None:
        self._check_open()
        if not self._kv_awake:
            raise EngineStateError("HFEngine is asleep: call wake_up() (or wake_up(['kv_cache'])) before generate()")
        self.weights.check_usable("generate")


def _torch_dtype(dtype: str | torch.dtype) -> str | torch.dtype:
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"HFEngine: unknown dtype {dtype!r} (use e.g. 'float32', 'bfloat16', 'float16', 'auto')")
    return resolved


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """EOS ids of the tokenizer and of the model's generation config."""
    ids = {tokenizer.eos_token_id}
    generation_config = getattr(model, "generation_config", None)
    configured = getattr(generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return frozenset(i for i in ids if i is not None)
