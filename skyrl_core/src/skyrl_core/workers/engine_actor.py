"""An inference engine inside an async Ray actor: every engine method, awaited on the actor's event loop.

Ray runs an actor with ``async def`` methods as an async actor: concurrent ``generate`` calls interleave on one
event loop, which is what lets the engine batch them (continuous batching). The engine keeps blocking work off
that loop (the ``hf`` engine computes on a thread of its own).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import attrs

from skyrl_core.inference.base import GenerationRequest, GenerationResult, SleepState
from skyrl_core.inference.receivers import TRANSPORT_CONFIG_KEY
from skyrl_core.weight_sync.base import WeightSyncInitInfo, WeightUpdateRequest
from skyrl_core.workers.setup import load_worker_config, set_threads


def engine_dtype(config: Any) -> str:
    """The dtype the engines hold their weights in: ``generator.model_dtype``, fp32 when ``trainer.bf16=false``."""
    return config.generator.model_dtype if config.trainer.bf16 else "float32"


class EngineActor:
    """Wraps the engine of ``generator.backend``; one per ``generator.num_inference_engines`` (``index``)."""

    def __init__(self, *, config: dict[str, Any], index: int, num_threads: int):
        set_threads(num_threads)
        from skyrl_core.config.loader import component_section

        self.config, self.pm = load_worker_config(config)
        generator, trainer = self.config.generator, self.config.trainer
        engine_cls = self.pm.registry("inference_backends")[generator.backend]
        self.engine = engine_cls(
            config=component_section(generator, generator.backend, "inference_backends", self.pm),
            model_path=trainer.policy.model.path,
            dtype=engine_dtype(self.config),
            seed=trainer.seed + 1000 * (index + 1),
            tensor_parallel_size=generator.inference_engine_tensor_parallel_size,
            gpu_memory_utilization=generator.gpu_memory_utilization,
            max_num_seqs=generator.max_num_seqs,
            max_num_batched_tokens=generator.max_num_batched_tokens,
            enable_prefix_caching=generator.enable_prefix_caching,
            enforce_eager=generator.enforce_eager,
            **dict(generator.engine_init_kwargs),
        )
        self.index = index

    def locate(self) -> tuple[int, str]:
        """This actor's process id and Ray node id."""
        import ray

        return os.getpid(), ray.get_runtime_context().get_node_id()

    def num_receivers(self) -> int:
        return self.engine.num_receivers

    def weight_transfer_dtype(self) -> str:
        return self.engine.weight_transfer_dtype or engine_dtype(self.config)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        return await self.engine.generate(request)

    async def sleep(self, level: int = 1) -> None:
        await self.engine.sleep(level)

    async def wake_up(self, tags: Sequence[str] | None = None) -> None:
        await self.engine.wake_up(tags)

    async def sleep_state(self) -> SleepState:
        return await self.engine.sleep_state()

    async def reset_prefix_cache(self) -> None:
        await self.engine.reset_prefix_cache()

    async def abort(self, request_ids: Sequence[str] | None = None) -> None:
        await self.engine.abort(request_ids)

    async def init_weight_receivers(self, info: WeightSyncInitInfo, first_rank: int) -> None:
        """Connect the engine's receivers, with the ``generator.<transport>`` section in ``info.extra``."""
        from skyrl_core.config.loader import component_section

        section = component_section(self.config.generator, info.transport, "weight_sync_backends", self.pm)
        info = attrs.evolve(info, extra={**info.extra, TRANSPORT_CONFIG_KEY: section})
        await self.engine.init_weight_receivers(info, first_rank)

    async def update_weights(self, request: WeightUpdateRequest) -> None:
        await self.engine.update_weights(request)

    async def probe_logprobs(self, token_ids: list[int]) -> list[float]:
        return await self.engine.probe_logprobs(token_ids)

    async def state_dict(self) -> dict[str, Any]:
        return await self.engine.state_dict()

    async def shutdown(self) -> None:
        await self.engine.shutdown()
