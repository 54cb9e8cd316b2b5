"""skyrl-sglang without SGLang: server arguments, sampling dicts, output dicts, memory tags, and the engine's
request/abort/sleep/weight-session bookkeeping over a fake SGLang engine. The real engine runs in
``test_sglang_gpu.py``."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import UserError
from skyrl_core.inference.base import EngineStateError, GenerationRequest, SamplingParams
from skyrl_core.testing.engine_conformance import INLINE, InlineTransport, _InlinePlugin
from skyrl_core.weight_sync.base import WeightSyncInitInfo, buckets_of
from skyrl_sglang import engine as engine_module
from skyrl_sglang import preflight, runtime
from skyrl_sglang.args import KNOB_DEFAULTS, resume_tags, sampling_dict, server_args, split_knobs
from skyrl_sglang.engine import SglangApi, SGLangEngine
from skyrl_sglang.outputs import input_logprobs_of, result_of


def output(tokens, logprobs, finish="length"):
    return {"text": "", "output_ids": list(tokens),
            "meta_info": {"finish_reason": {"type": finish} if finish else None,
                          "output_token_logprobs": [(lp, t, None) for t, lp in zip(tokens, logprobs)]}}


def test_server_args_map_every_knob():
    knobs = {"gpu_memory_utilization": 0.6, "max_num_seqs": 64, "max_num_batched_tokens": 4096,
             "enable_prefix_caching": False, "enforce_eager": True}
    args = server_args(model_path="/m", dtype="bfloat16", seed=4, tensor_parallel_size=2, knobs=knobs,
                       context_length=4096, extra={"attention_backend": "fa3"})
    assert args == {"model_path": "/m", "dtype": "bfloat16", "random_seed": 4, "tp_size": 2,
                    "mem_fraction_static": 0.6, "max_running_requests": 64, "chunked_prefill_size": 4096,
                    "disable_radix_cache": True, "disable_cuda_graph": True, "enable_memory_saver": True,
                    "enable_weights_cpu_backup": True, "skip_tokenizer_init": False, "log_level": "error",
                    "context_length": 4096, "attention_backend": "fa3"}
    with pytest.raises(UserError, match="tp_size"):
        server_args(model_path="/m", dtype="bfloat16", seed=4, tensor_parallel_size=2, knobs=knobs,
                    context_length=None, extra={"tp_size": 4})


def test_split_knobs_and_sampling_dict():
    knobs, extra = split_knobs({"max_num_seqs": 8, "x": 1}, max_num_seqs=None, enforce_eager=False)
    assert knobs == {**KNOB_DEFAULTS, "max_num_seqs": 8, "enforce_eager": False} and extra == {"x": 1}
    s = SamplingParams(temperature=0.6, top_k=-1, max_tokens=7, stop=["\n\n"], stop_token_ids=[2])
    assert sampling_dict(s) == {"n": 1, "max_new_tokens": 7, "temperature": 0.6, "top_p": 1.0, "top_k": -1,
                                "min_p": 0.0, "repetition_penalty": 1.0, "stop": ["\n\n"], "stop_token_ids": [2],
                                "no_stop_trim": True}


def test_resume_tags():
    assert resume_tags(None) is None
    assert resume_tags(["weights"]) == ["weights"]
    assert resume_tags(["kv_cache"]) == ["kv_cache", "cuda_graph"]
    with pytest.raises(ValueError, match="cuda_graph"):
        resume_tags(["cuda_graph"])


def test_result_of_reads_tokens_logprobs_and_finish_reason():
    result = result_of(output([5, 6], [-0.5, -1.0], "stop"))
    assert (result.token_ids, result.logprobs, result.stop_reason) == ([5, 6], [-0.5, -1.0], "stop")
    assert result_of(output([5], [-0.5], "abort")).stop_reason == "abort"
    with pytest.raises(RuntimeError, match="finish_reason=None"):
        result_of(output([5], [-0.5], None))
    mismatch = output([5], [-0.5])
    mismatch["output_ids"] = [6]
    with pytest.raises(RuntimeError, match="differ"):
        result_of(mismatch)


def test_input_logprobs_skip_the_first_token():
    out = {"meta_info": {"input_token_logprobs": [(None, 3, None), (-0.2, 4, None), (-1.5, 9, None)]}}
    assert input_logprobs_of(out, [3, 4, 9]) == [-0.2, -1.5]
    with pytest.raises(RuntimeError, match="expected"):
        input_logprobs_of(out, [3, 4])


class FakeManager:
    def __init__(self):
        self.calls = []
        self.aborted = set()

    def abort_request(self, rid):
        self.calls.append(("abort", rid))
        self.aborted.add(rid)

    async def release_memory_occupation(self, obj, request):
        self.calls.append(("release", obj.tags))

    async def resume_memory_occupation(self, obj, request):
        self.calls.append(("resume", obj.tags))

    async def begin_weight_update(self, obj, request):
        self.calls.append(("begin", obj.selector))

    async def end_weight_update(self, obj, request):
        self.calls.append(("end", None))

    async def flush_cache(self):
        self.calls.append(("flush", None))

    async def update_weights_from_tensor(self, obj, request):
        self.calls.append(("update", (obj.serialized_named_tensors, obj.flush_cache)))
        return True, ""


class FakeEngine:
    def __init__(self):
        self.tokenizer_manager = FakeManager()
        self.shut = False

    async def async_generate(self, input_ids, sampling_params, return_logprob, rid, logprob_start_len=None):
        if logprob_start_len == 0:
            return {"meta_info": {"input_token_logprobs": [(None, input_ids[0], None)] +
                                  [(-0.5, t, None) for t in input_ids[1:]]}}
        tokens = []
        for step in range(sampling_params["max_new_tokens"]):
            if rid in self.tokenizer_manager.aborted:
                return output(tokens, [-0.1] * len(tokens), "abort")
            await asyncio.sleep(0.01)
            tokens.append(input_ids[-1] + step + 1)
        return output(tokens, [-0.1] * len(tokens), "length")

    def shutdown(self):
        self.shut = True


def io_struct():
    def cls(name):
        return type(name, (), {"__init__": lambda self, **kw: self.__dict__.update(kw)})

    names = ["ReleaseMemoryOccupationReqInput", "ResumeMemoryOccupationReqInput", "BeginWeightUpdateReqInput",
             "EndWeightUpdateReqInput", "UpdateWeightsFromTensorReqInput"]
    return SimpleNamespace(**{n: cls(n) for n in names})


@pytest.fixture
def fake(monkeypatch):
    engine = FakeEngine()
    api = SglangApi(start=lambda args: engine, io=io_struct(), serialize=lambda named: [n for n, _ in named])
    monkeypatch.setattr(engine_module, "load_sglang", lambda: api)
    monkeypatch.setattr(runtime, "require", lambda **_: None)
    return engine


def make_engine():
    return SGLangEngine(model_path="/m", dtype="bfloat16", seed=1, tensor_parallel_size=2, max_num_seqs=16)


def request(n, rid=None):
    return GenerationRequest(prompt_token_ids=[3, 4], sampling=SamplingParams(max_tokens=n), request_id=rid)


def test_constructor_without_sglang_or_gpu_names_what_is_missing():
    with pytest.raises(UserError, match="sglang package is not installed.*no CUDA GPU"):
        SGLangEngine(model_path="/m")


def test_generate_and_abort(fake):
    engine = make_engine()
    assert engine.args["max_running_requests"] == 16 and engine.num_receivers == 1

    async def main():
        done = await engine.generate(request(3))
        long = asyncio.ensure_future(engine.generate(request(500, "long")))
        await asyncio.sleep(0.05)
        await engine.abort()
        return done, await long

    done, aborted = asyncio.run(main())
    assert done.token_ids == [5, 6, 7] and done.stop_reason == "length"
    assert aborted.stop_reason == "abort" and 0 < len(aborted.token_ids) < 500
    assert ("abort", "long") in fake.tokenizer_manager.calls


def test_sleep_wake_and_one_weight_session_per_sync(fake, register_plugin):
    register_plugin(_InlinePlugin())
    engine = make_engine()
    info = WeightSyncInitInfo(transport=INLINE, master_addr="127.0.0.1", master_port=0, world_size=2)
    weights = {"a.weight": torch.randn(4, 4), "b.weight": torch.randn(4)}
    sender = InlineTransport.sender_cls(init_info=info)

    async def main():
        await engine.init_weight_receivers(info, 1)
        await engine.sleep(2)
        with pytest.raises(EngineStateError, match="asleep"):
            await engine.generate(request(1))
        with pytest.raises(EngineStateError, match="dropped"):
            await engine.update_weights(sender.prepare(next(buckets_of(weights.items(), dtype=torch.float32,
                                                                        bucket_bytes=1))))
        await engine.wake_up(["weights"])
        for chunk in buckets_of(weights.items(), dtype=torch.float32, bucket_bytes=1):
            await engine.update_weights(sender.prepare(chunk))
        await engine.reset_prefix_cache()
        await engine.wake_up(["kv_cache"])
        assert (await engine.sleep_state()).awake
        await engine.reset_prefix_cache()
        assert await engine.probe_logprobs([1, 2, 3]) == [-0.5, -0.5]
        await engine.shutdown()

    asyncio.run(main())
    assert fake.tokenizer_manager.calls == [
        ("release", ["kv_cache", "weights", "cuda_graph"]), ("resume", ["weights"]), ("begin", "all"),
        ("update", ([["a.weight"], ["a.weight"]], False)), ("update", ([["b.weight"], ["b.weight"]], False)),
        ("end", None), ("flush", None), ("resume", ["kv_cache", "cuda_graph"]), ("flush", None)]
    assert fake.shut


def test_preflight_refuses_a_penalty_with_logprobs():
    config = SkyRLConfig()
    assert preflight.problems(config) == []
    config.generator.sampling_params.repetition_penalty = 1.2
    assert "repetition_penalty=1.2" in preflight.problems(config)[0]
    config.generator.sampling_params.logprobs = None
    assert preflight.problems(config) == []
    with pytest.raises(UserError, match="cannot start"):
        preflight.check(config)


def test_plugins_are_listed_without_importing_engines_or_torch():
    import subprocess
    import sys

    code = ("import sys, skyrl_vllm.plugin, skyrl_sglang.plugin; "
            "print(sorted(m for m in ('vllm', 'sglang', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
    listing = subprocess.run([sys.executable, "-m", "skyrl_core.cli.main", "plugins", "--json"],
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    assert '"vllm"' in listing.stdout and '"sglang"' in listing.stdout and '"cuda_ipc"' in listing.stdout
