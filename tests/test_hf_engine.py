"""The built-in ``hf`` inference engine on tiny random models (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from skyrl_core.inference.base import GenerationRequest, SamplingParams
from skyrl_core.inference.hf import HFEngine
from skyrl_core.testing.tiny_model import make_tiny_model

ARCHS = ["qwen2", "llama"]
# Prompt lengths differ so the batch is left-padded; max_tokens differ so finished rows leave the batch mid-way.
PROMPT_LENGTHS = [5, 17, 1, 9]
MAX_TOKENS = [12, 4, 12, 8]


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_engine")
    return {arch: str(make_tiny_model(root / arch, arch=arch, seed=0)) for arch in ARCHS}


def _sharpen(engine: HFEngine, factor: float = 5.0) -> None:
    """Scale every matrix so the random model's next-token distributions are far from uniform.

    (x5 takes the top log-prob from about -5.7 to about -4 and keeps the float32 log-prob error near 2e-6; x10 would
    take it to about -2.5 but bring the error up to 7e-6, too close to the 1e-5 bound.)
    """
    engine.load_weights((name, t * factor) for name, t in engine.state_dict().items() if t.ndim == 2)


@pytest.fixture(scope="module")
def engines(model_paths):
    """One sharpened engine per architecture, shared by the tests that do not change its weights."""
    out = {}
    for arch, path in model_paths.items():
        out[arch] = HFEngine(model_path=path, seed=0, device="cpu")
        _sharpen(out[arch])
    return out


@pytest.fixture
def engine(engines):
    return engines["qwen2"]


def _prompts(lengths=PROMPT_LENGTHS, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 500, (n,), generator=g).tolist() for n in lengths]


def _requests(prompts, max_tokens=MAX_TOKENS, **sampling):
    return [
        GenerationRequest(prompt_token_ids=p, sampling=SamplingParams(max_tokens=m, **sampling))
        for p, m in zip(prompts, max_tokens, strict=True)
    ]


def _full_forward_logits(engine, prompt, completion):
    """float32 logits predicting each completion token, from one unpadded forward over prompt + completion."""
    with torch.no_grad():
        logits = engine.model(input_ids=torch.tensor([prompt + completion])).logits[0].float()
    return logits[len(prompt) - 1 : -1]


def _greedy(engine, prompt, max_tokens=16, **sampling):
    request = GenerationRequest(
        prompt_token_ids=prompt, sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens, **sampling)
    )
    return engine.generate([request])[0]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_a_full_forward_pass(engines, arch, temperature):
    engine, prompts = engines[arch], _prompts()
    results = engine.generate(_requests(prompts, temperature=temperature))
    max_diff = 0.0
    for prompt, result, max_tokens in zip(prompts, results, MAX_TOKENS, strict=True):
        assert len(result.token_ids) == len(result.logprobs) >= 1
        assert len(result.token_ids) == max_tokens or result.stop_reason == "stop"
        logits = _full_forward_logits(engine, prompt, result.token_ids)
        expected = torch.log_softmax(logits / temperature, dim=-1).gather(-1, torch.tensor(result.token_ids)[:, None])
        max_diff = max(max_diff, (expected.squeeze(-1) - torch.tensor(result.logprobs)).abs().max().item())
    assert max_diff < 1e-5


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_is_the_argmax_of_a_full_forward_pass(engines, arch):
    engine, prompts = engines[arch], _prompts()
    for prompt, result in zip(prompts, engine.generate(_requests(prompts, temperature=0.0)), strict=True):
        logits = _full_forward_logits(engine, prompt, result.token_ids)
        assert result.token_ids == logits.argmax(-1).tolist()
        expected = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(result.token_ids)[:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(result.logprobs), expected, atol=1e-5)


@pytest.mark.parametrize("sampling", [dict(top_k=1), dict(top_p=1e-6), dict(min_p=1.0)])
def test_extreme_truncation_is_greedy_but_logprobs_use_the_full_distribution(engine, sampling):
    prompt = _prompts()[1]
    greedy = _greedy(engine, prompt)
    result = engine.generate(
        [GenerationRequest(prompt_token_ids=prompt, sampling=SamplingParams(max_tokens=16, **sampling))]
    )[0]
    assert result.token_ids == greedy.token_ids
    assert result.logprobs == pytest.approx(greedy.logprobs, abs=1e-6)
    assert max(result.logprobs) < 0.0


def test_repetition_penalty_avoids_seen_tokens(engine):
    prompt = _prompts()[1]
    result = _greedy(engine, prompt, max_tokens=20, repetition_penalty=1e3)
    assert len(set(result.token_ids)) == len(result.token_ids)
    assert not set(result.token_ids) & set(prompt)


def test_same_seed_same_tokens(model_paths):
    prompts = _prompts(seed=2)
    runs = [HFEngine(model_path=model_paths["qwen2"], seed=seed).generate(_requests(prompts)) for seed in (7, 7, 8)]
    tokens = [[r.token_ids for r in run] for run in runs]
    assert tokens[0] == tokens[1]
    assert tokens[0] != tokens[2]


def test_mixed_sampling_params_keep_request_order(engine):
    prompts = _prompts()
    greedy = [_greedy(engine, p, max_tokens=6).token_ids for p in prompts]
    requests = [
        GenerationRequest(prompt_token_ids=p, sampling=SamplingParams(temperature=0.0 if i % 2 else 0.9, max_tokens=6))
        for i, p in enumerate(prompts)
    ]
    results = engine.generate(requests)
    assert [results[i].token_ids for i in (1, 3)] == [greedy[i] for i in (1, 3)]
    assert all(len(r.token_ids) == 6 or r.stop_reason == "stop" for r in results)


def test_max_tokens_gives_length(engine):
    result = _greedy(engine, _prompts()[0], max_tokens=5)
    assert (len(result.token_ids), result.stop_reason) == (5, "length")
    assert engine.tokenizer.eos_token_id in engine.eos_ids


def test_stop_token_ids(engine):
    prompt = _prompts()[2]
    full = _greedy(engine, prompt).token_ids
    stop_token = full[5]
    first = full.index(stop_token)  # the token may already occur earlier
    result = _greedy(engine, prompt, stop_token_ids=[stop_token])
    assert result.token_ids == full[: first + 1]
    assert result.stop_reason == "stop"


def test_stop_string_ends_generation_at_the_completing_token(engine):
    prompt = _prompts()[3]
    full = _greedy(engine, prompt, max_tokens=24).token_ids
    decode = engine.tokenizer.decode
    # The first k whose decoded text ends in a 3-character string that the first k-1 tokens do not contain.
    for k in range(4, len(full)):
        stop = decode(full[:k])[-3:]
        if stop.strip() and stop not in decode(full[: k - 1]):
            break
    else:
        pytest.fail("no usable stop string in the greedy output")
    result = _greedy(engine, prompt, max_tokens=24, stop=[stop, "never produced \u2603"])
    assert result.token_ids == full[:k]
    assert result.stop_reason == "stop"
    assert stop in decode(result.token_ids)


def test_load_weights_then_state_dict(model_paths):
    engine = HFEngine(model_path=model_paths["llama"])
    specs = engine.parameter_specs()
    assert [name for name, _, _ in specs] == list(engine.model.state_dict())
    g = torch.Generator().manual_seed(3)
    new = {name: torch.randn(shape, generator=g, dtype=torch.float64) for name, shape, _ in specs}
    engine.load_weights(new.items())
    state = engine.state_dict()
    assert list(state) == list(new)
    for name, tensor in new.items():
        assert state[name].dtype == torch.float32
        assert torch.equal(state[name], tensor.float())
    with pytest.raises(KeyError, match="no_such_weight"):
        engine.load_weights([("no_such_weight", torch.zeros(1))])
    with pytest.raises(ValueError, match="shape"):
        engine.load_weights([(specs[0][0], torch.zeros(1))])


def test_tied_weights_are_listed_once(model_paths):
    engine = HFEngine(model_path=model_paths["qwen2"])
    engine.model.lm_head.weight = engine.model.model.embed_tokens.weight
    names = [name for name, _, _ in engine.parameter_specs()]
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names
    engine.load_weights([("lm_head.weight", torch.ones_like(engine.model.lm_head.weight))])
    assert torch.equal(engine.state_dict()["model.embed_tokens.weight"], torch.ones_like(engine.model.lm_head.weight))


def test_sleep_blocks_generate_until_wake_up(model_paths):
    engine = HFEngine(model_path=model_paths["qwen2"])
    request = _requests(_prompts()[:1], max_tokens=[3])
    engine.sleep()
    with pytest.raises(RuntimeError, match="asleep"):
        engine.generate(request)
    engine.wake_up()
    result = engine.generate(request)[0]
    assert len(result.token_ids) == 3 or result.stop_reason == "stop"
    engine.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        engine.generate(request)


@pytest.mark.parametrize("arch", ARCHS)
def test_repeated_prompts_share_one_prefill_and_stay_exact(engines, arch):
    engine, prompts = engines[arch], _prompts()
    group = [prompts[0], prompts[1], prompts[0], prompts[0], prompts[1]]  # GRPO-style repeats, interleaved
    results = engine.generate(_requests(group, max_tokens=[6] * len(group)))
    assert len({tuple(r.token_ids) for r in results}) > 1, "repeated prompts must still be sampled independently"
    for prompt, result in zip(group, results, strict=True):
        logits = _full_forward_logits(engine, prompt, result.token_ids)
        expected = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(result.token_ids)[:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(result.logprobs), expected, atol=1e-5)
