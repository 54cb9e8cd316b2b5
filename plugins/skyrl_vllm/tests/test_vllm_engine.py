"""``VLLMEngine`` over a fake ``AsyncLLM``: request and abort bookkeeping, sleep/wake, weight RPCs; the runtime check
and the preflight. The real engine runs in ``test_vllm_gpu.py``."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeAsyncLLM, FakeSamplingParams

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import UserError
from skyrl_core.inference.base import EngineStateError, GenerationRequest, SamplingParams
from skyrl_core.weight_sync.base import WeightSyncInitInfo, WeightUpdateRequest
from skyrl_vllm import engine as engine_module
from skyrl_vllm import preflight, runtime
from skyrl_vllm.engine import VllmApi, VLLMEngine
from skyrl_vllm.worker_ext import decode


@pytest.fixture
def fake(monkeypatch):
    llm = FakeAsyncLLM()
    started = []
    api = VllmApi(engine_arg_fields=frozenset({"swap_space"}), start=lambda args: started.append(args) or llm,
                  sampling_params=FakeSamplingParams, delta="DELTA", final_only="FINAL")
    monkeypatch.setattr(engine_module, "load_vllm", lambda: api)
    monkeypatch.setattr(runtime, "require", lambda **_: None)
    llm.started = started
    return llm


def make_engine(**kw):
    return VLLMEngine(model_path="/m", dtype="bfloat16", seed=3, tensor_parallel_size=2, **kw)


def request(n, request_id=None, prompt=(5, 6)):
    return GenerationRequest(prompt_token_ids=list(prompt), sampling=SamplingParams(max_tokens=n),
                             request_id=request_id)


def test_constructor_without_vllm_or_gpu_names_what_is_missing():
    with pytest.raises(UserError, match="vllm package is not installed.*no CUDA GPU"):
        VLLMEngine(model_path="/m")


def test_runtime_check_lists_each_missing_piece():
    assert runtime.missing(has_vllm=lambda: True, cuda_devices=lambda: 1) == []
    assert len(runtime.missing(has_vllm=lambda: False, cuda_devices=lambda: 0)) == 2


def test_constructor_builds_engine_args(fake):
    engine = make_engine(gpu_memory_utilization=0.5, swap_space=4)
    (args,) = fake.started
    assert args["gpu_memory_utilization"] == 0.5 and args["swap_space"] == 4 and args["tensor_parallel_size"] == 2
    assert engine.num_receivers == 2


def test_generate_returns_tokens_and_logprobs(fake):
    engine = make_engine()
    result = asyncio.run(engine.generate(request(3, "r1")))
    assert result.token_ids == [7, 8, 9] and result.stop_reason == "length"
    assert result.logprobs == pytest.approx([-0.1, -0.2, -0.3])
    _, (prompt, params, request_id) = fake.calls[-1]
    assert prompt == {"prompt_token_ids": [5, 6]} and request_id == "r1"
    assert params.kwargs["output_kind"] == "DELTA" and params.kwargs["logprobs"] == 0


def test_abort_returns_partial_results_and_spares_the_others(fake):
    engine = make_engine()

    async def main():
        long = [asyncio.ensure_future(engine.generate(request(500, f"long-{i}"))) for i in range(3)]
        short = asyncio.ensure_future(engine.generate(request(2, "short")))
        await asyncio.sleep(0.1)
        await engine.abort(["long-0", "long-1", "not-running"])
        first = await asyncio.gather(*long[:2])
        await engine.abort()
        return first, await long[2], await short

    (a, b), c, short = asyncio.run(main())
    for result in (a, b, c):
        assert result.stop_reason == "abort" and 0 < len(result.token_ids) < 500
        assert len(result.token_ids) == len(result.logprobs)
    assert short.stop_reason == "length" and engine._running == {}


def test_duplicate_request_id_is_refused(fake):
    engine = make_engine()

    async def main():
        first = asyncio.ensure_future(engine.generate(request(50, "same")))
        await asyncio.sleep(0.02)
        with pytest.raises(ValueError, match="already running"):
            await engine.generate(request(1, "same"))
        await engine.abort()
        await first

    asyncio.run(main())


def test_sleep_aborts_resets_and_refuses_generation_until_woken(fake):
    engine = make_engine()

    async def main():
        running = asyncio.ensure_future(engine.generate(request(500)))
        await asyncio.sleep(0.05)
        await engine.sleep(2)
        assert (await running).stop_reason == "abort"
        with pytest.raises(EngineStateError, match="asleep"):
            await engine.generate(request(1))
        await engine.wake_up(["weights"])
        await engine.update_weights(WeightUpdateRequest(names=[], dtypes=[], shapes=[]))
        await engine.wake_up(["kv_cache"])
        return await engine.generate(request(1))

    with pytest.raises(EngineStateError, match="before init_weight_receivers"):
        asyncio.run(main())
    names = [c[0] for c in fake.calls if c[0] != "generate"]
    assert names == ["reset_prefix_cache", "sleep", "wake_up"]


def test_update_weights_needs_weights_on_the_device(fake):
    engine = make_engine()

    async def main():
        await engine.init_weight_receivers(WeightSyncInitInfo(transport="t", master_addr="a", master_port=1,
                                                              world_size=3), 1)
        await engine.sleep(1)
        with pytest.raises(EngineStateError, match="offloaded"):
            await engine.update_weights(WeightUpdateRequest(names=["w"], dtypes=["float32"], shapes=[(2,)]))
        await engine.wake_up(None)
        await engine.update_weights(WeightUpdateRequest(names=["w"], dtypes=["float32"], shapes=[(2,)]))
        await engine.shutdown()

    asyncio.run(main())
    rpcs = [args for name, args in fake.calls if name == "collective_rpc"]
    assert [method for method, _ in rpcs] == ["skyrl_init_receiver", "skyrl_update_weights", "skyrl_close_receiver"]
    info, first_rank = decode(rpcs[0][1][0])
    assert (info.world_size, first_rank) == (3, 1)
    (sent,) = decode(rpcs[1][1][0])
    assert sent.names == ["w"] and fake.shut


def test_reset_prefix_cache_preempts_running_requests_when_needed(fake):
    engine = make_engine()
    fake.reset_results = [False, True]
    asyncio.run(engine.reset_prefix_cache())
    assert [c for c in fake.calls if c[0] == "reset_prefix_cache"] == [("reset_prefix_cache", False),
                                                                       ("reset_prefix_cache", True)]
    fake.reset_results = [False, False]
    with pytest.raises(RuntimeError, match="did not reset"):
        asyncio.run(engine.reset_prefix_cache())


def test_probe_reads_prompt_logprobs(fake):
    engine = make_engine()
    assert asyncio.run(engine.probe_logprobs([4, 5, 6])) == [-1.0, -2.0]


def run_config(**generator):
    config = SkyRLConfig()
    for key, value in generator.items():
        setattr(config.generator, key, value)
    return config


def test_preflight_accepts_the_default_run_and_refuses_what_vllm_cannot_do():
    assert preflight.problems(run_config(weight_sync_backend="nccl")) == []
    config = run_config(weight_sync_backend="ray")
    config.generator.sampling_params.top_p = 0.9
    found = preflight.problems(config)
    assert len(found) == 2 and "top_p=0.9" in found[0] and "weight_sync_backend=ray" in found[1]
    config.generator.sampling_params.logprobs = None
    assert len(preflight.problems(config)) == 1
    ipc = run_config(weight_sync_backend="cuda_ipc", num_inference_engines=2)
    ipc.trainer.placement.colocate_all = True
    assert "here 2" in preflight.problems(ipc)[0]
    ipc.generator.num_inference_engines = 1
    assert preflight.problems(ipc) == []


def test_preflight_check_reports_the_runtime_first():
    with pytest.raises(UserError, match="cannot start"):
        preflight.check(run_config())
