"""The vLLM engine on a real GPU: skyrl's engine conformance suite, and a weight sync over ``cuda_ipc``.

Never run yet (written without a GPU; see the README). The conformance suite's own weight tests send over a
test-only transport registered in this process only; vLLM's workers live in other processes, so they are replaced
here by the same checks over ``cuda_ipc``, which every process finds through the plugin's entry point.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from skyrl_core.testing.engine_conformance import EngineConformance, _forward_logprobs, _new_weights, greedy, prompts
from skyrl_core.weight_sync.base import WeightSyncInitInfo, buckets_of

pytestmark = pytest.mark.gpu
pytest.importorskip("vllm")

from skyrl_vllm.cuda_ipc import CudaIpcTransport  # noqa: E402
from skyrl_vllm.engine import VLLMEngine  # noqa: E402


def run(coro):
    return asyncio.run(coro)


async def sync_over_cuda_ipc(engine: VLLMEngine, weights: dict[str, torch.Tensor]) -> None:
    info = WeightSyncInitInfo(transport="cuda_ipc", master_addr="127.0.0.1", master_port=0, world_size=2)
    sender = CudaIpcTransport.sender_cls(init_info=info)
    await engine.init_weight_receivers(info, 1)
    gpu = ((name, tensor.cuda()) for name, tensor in weights.items())
    for chunk in buckets_of(gpu, dtype=torch.float32, bucket_bytes=1 << 16):
        await engine.update_weights(sender.prepare(chunk))
    await engine.reset_prefix_cache()
    sender.close()


class TestVLLMConformance(EngineConformance):
    engine_cls = VLLMEngine
    logprob_atol = 1e-3

    @classmethod
    def build_engine(cls, model_path: str, seed: int = 0) -> VLLMEngine:
        return VLLMEngine(model_path=model_path, dtype="float32", seed=seed, tensor_parallel_size=1,
                          gpu_memory_utilization=0.2, max_num_seqs=64, max_num_batched_tokens=2048)

    def test_weight_update_changes_output_and_matches_the_source(self, fresh_engine, reference):
        request = greedy(prompts()[1], 12)
        before = run(fresh_engine.generate(request)).token_ids
        new = _new_weights(reference)
        run(sync_over_cuda_ipc(fresh_engine, new))
        assert run(fresh_engine.generate(request)).token_ids != before
        self._check_holds(fresh_engine, reference, new)

    def test_level_two_sleep_then_a_full_sync(self, fresh_engine, reference):
        new = _new_weights(reference)
        run(fresh_engine.sleep(2))
        run(fresh_engine.wake_up(["weights"]))
        run(sync_over_cuda_ipc(fresh_engine, new))
        run(fresh_engine.wake_up(["kv_cache"]))
        self._check_holds(fresh_engine, reference, new)

    def test_processed_logprobs_follow_the_temperature(self, engine, reference):
        """The contract in numbers: at T=0.5 the reported log-probs are those of logits / 0.5."""
        from skyrl_core.inference.base import GenerationRequest, SamplingParams

        prompt = prompts()[0]
        result = run(engine.generate(GenerationRequest(prompt_token_ids=prompt,
                                                       sampling=SamplingParams(temperature=0.5, max_tokens=8))))
        expected = _forward_logprobs(reference, prompt, result.token_ids, 0.5)
        assert torch.allclose(torch.tensor(result.logprobs), expected, atol=self.logprob_atol)
