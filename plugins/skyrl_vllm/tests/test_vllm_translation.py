"""Config -> engine arguments, sampling parameters, output reading and sleep/wake bookkeeping (no vLLM needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fakes import delta_output, logprob

from skyrl_core.errors import UserError
from skyrl_core.inference.base import SamplingParams, SleepState
from skyrl_vllm import memory
from skyrl_vllm.args import (
    KNOB_DEFAULTS,
    engine_args,
    logprob_contract_problems,
    probe_kwargs,
    sampling_kwargs,
    split_knobs,
)
from skyrl_vllm.outputs import Completion, prompt_logprobs_of, stop_reason_of


def make_args(**over):
    base = dict(model_path="/m", dtype="bfloat16", seed=7, tensor_parallel_size=2, knobs=dict(KNOB_DEFAULTS),
                max_model_len=None, extra={})
    base.update(over)
    return engine_args(**base)


def test_engine_args_carry_every_knob_and_the_fixed_settings():
    knobs = {"gpu_memory_utilization": 0.55, "max_num_seqs": 64, "max_num_batched_tokens": 4096,
             "enable_prefix_caching": False, "enforce_eager": False}
    args = make_args(knobs=knobs, max_model_len=2048, extra={"distributed_executor_backend": "mp"})
    assert args == {
        "model": "/m", "dtype": "bfloat16", "seed": 7, "tensor_parallel_size": 2, **knobs, "max_model_len": 2048,
        "logprobs_mode": "processed_logprobs", "enable_sleep_mode": True,
        "worker_extension_cls": "skyrl_vllm.worker_ext.SkyrlWorkerExtension", "distributed_executor_backend": "mp",
    }
    assert "max_model_len" not in make_args()


def test_engine_init_kwargs_may_not_override_what_skyrl_sets():
    with pytest.raises(UserError, match="logprobs_mode, seed"):
        make_args(extra={"seed": 1, "logprobs_mode": "raw_logprobs"})


def test_unknown_engine_init_kwargs_are_refused_when_the_fields_are_known():
    with pytest.raises(UserError, match="gpu_mem_util"):
        make_args(extra={"gpu_mem_util": 0.5}, known_fields=frozenset({"model", "swap_space"}))
    assert make_args(extra={"swap_space": 4}, known_fields=frozenset({"swap_space"}))["swap_space"] == 4


def test_knobs_come_from_keywords_then_engine_init_kwargs_then_defaults():
    knobs, extra = split_knobs({"max_num_seqs": 32, "enforce_eager": False, "swap_space": 4},
                               max_num_seqs=None, enforce_eager=True, gpu_memory_utilization=0.6)
    assert knobs == {**KNOB_DEFAULTS, "max_num_seqs": 32, "enforce_eager": True, "gpu_memory_utilization": 0.6}
    assert extra == {"swap_space": 4}


def test_sampling_kwargs():
    s = SamplingParams(temperature=0.7, top_p=0.9, top_k=-1, min_p=0.05, max_tokens=33, stop=["</a>", ""],
                       stop_token_ids=[5], repetition_penalty=1.1)
    assert sampling_kwargs(s) == {
        "n": 1, "temperature": 0.7, "top_p": 0.9, "top_k": 0, "min_p": 0.05, "repetition_penalty": 1.1,
        "max_tokens": 33, "stop": ["</a>"], "stop_token_ids": [5], "include_stop_str_in_output": True,
        "detokenize": True, "logprobs": 0,
    }
    plain = sampling_kwargs(SamplingParams(top_k=20))
    assert (plain["top_k"], plain["stop"], plain["stop_token_ids"], plain["detokenize"]) == (20, None, None, False)
    assert probe_kwargs()["prompt_logprobs"] == 0 and probe_kwargs()["max_tokens"] == 1


def test_logprob_contract_problems_name_each_non_neutral_setting():
    neutral = SimpleNamespace(top_k=-1, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    assert logprob_contract_problems(neutral) == []
    bad = SimpleNamespace(top_k=50, top_p=0.95, min_p=0.0, repetition_penalty=1.0)
    assert logprob_contract_problems(bad) == ["generator.sampling_params.top_k=50",
                                              "generator.sampling_params.top_p=0.95"]


def test_completion_appends_deltas_and_reads_the_sampled_tokens_logprob():
    c = Completion()
    c.add(delta_output([11, 12], [-0.5, -1.5]))
    c.add(delta_output([13], [-0.25], finish_reason="stop"))
    result = c.result(aborted=False)
    assert (result.token_ids, result.logprobs, result.stop_reason) == ([11, 12, 13], [-0.5, -1.5, -0.25], "stop")


def test_completion_without_finish_reason_is_an_abort_only_when_we_aborted():
    c = Completion()
    c.add(delta_output([4], [-2.0]))
    assert c.result(aborted=True).stop_reason == "abort"
    with pytest.raises(RuntimeError, match="without a finish reason"):
        c.result(aborted=False)


def test_completion_refuses_a_missing_logprob():
    output = delta_output([4], [-2.0])
    output.outputs[0].logprobs = [{5: logprob(-1.0)}]
    with pytest.raises(RuntimeError, match="token 4 at position 0"):
        Completion().add(output)


@pytest.mark.parametrize(("finish", "expected"), [("stop", "stop"), ("length", "length"), ("abort", "abort")])
def test_stop_reasons(finish, expected):
    assert stop_reason_of(finish, aborted=False) == expected


def test_unknown_finish_reason_fails():
    with pytest.raises(RuntimeError, match="error"):
        stop_reason_of("error", aborted=False)


def test_prompt_logprobs_skip_the_first_position():
    ids = [3, 8, 9]
    output = SimpleNamespace(prompt_logprobs=[None, {8: logprob(-0.3), 1: logprob(-0.1)}, {9: logprob(-2.0)}])
    assert prompt_logprobs_of(output, ids) == [-0.3, -2.0]
    with pytest.raises(RuntimeError, match="2 prompt log-probs for 3"):
        prompt_logprobs_of(SimpleNamespace(prompt_logprobs=[None, {}]), ids)


def test_sleep_levels_and_wake_tags():
    assert memory.after_sleep(1) == SleepState(weights="offloaded", kv_cache=False)
    two = memory.after_sleep(2)
    assert two == SleepState(weights="dropped", kv_cache=False)
    weights = memory.after_wake(two, ["weights"])
    assert weights == SleepState(weights="device", kv_cache=False) and not weights.awake
    assert memory.after_wake(weights, ["kv_cache"]).awake
    assert memory.after_wake(two, None).awake
    with pytest.raises(ValueError, match="level 0"):
        memory.after_sleep(0)
    with pytest.raises(ValueError, match="scheduling"):
        memory.checked_tags(["scheduling"])
