"""The built-in ``hf`` engine on tiny random models (CPU, seconds): the engine conformance suite, plus what is
specific to it (per-row sampling maths, the prefix cache, sleep levels, seeds)."""

from __future__ import annotations

import asyncio
import math

import pytest
import torch

from skyrl_core.inference.base import EngineStateError, GenerationRequest, SamplingParams
from skyrl_core.inference.hf import HFEngine
from skyrl_core.inference.hf_config import HFEngineConfig
from skyrl_core.inference.hf_sampling import RowSampling, inverse_transform, penalise, sample, truncate
from skyrl_core.testing.engine_conformance import EngineConformance, generate_all, greedy, prompts, run


class TestHFConformance(EngineConformance):
    engine_cls = HFEngine
    logprob_atol = 1e-5

    @classmethod
    def build_engine(cls, model_path, seed=0):
        return HFEngine(model_path=model_path, seed=seed, device="cpu")

    # -- hf only ------------------------------------------------------------------------------------------------

    def test_repeated_prompts_share_one_prefill(self, fresh_engine, reference):
        group = [prompts()[0]] * 4 + [prompts()[1]] * 2  # GRPO-style repeats, sent as separate requests
        requests = [GenerationRequest(prompt_token_ids=p, sampling=SamplingParams(max_tokens=6)) for p in group]
        results = run(generate_all(fresh_engine, requests))
        assert fresh_engine.prefix_cache_tokens == len(prompts()[0]) + len(prompts()[1])
        assert len({tuple(r.token_ids) for r in results[:4]}) > 1, "repeats must still be sampled independently"
        for prompt, result in zip(group, results, strict=True):
            with torch.no_grad():
                logits = reference(input_ids=torch.tensor([prompt + result.token_ids])).logits[0, len(prompt) - 1 : -1]
            expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(result.token_ids)[:, None]).squeeze(-1)
            assert torch.allclose(torch.tensor(result.logprobs), expected, atol=1e-5)
        run(fresh_engine.reset_prefix_cache())
        assert fresh_engine.prefix_cache_tokens == 0

    def test_sleep_frees_the_kv_and_prefix_cache(self, fresh_engine):
        run(fresh_engine.generate(greedy(prompts()[0], 4)))
        assert fresh_engine.prefix_cache_tokens > 0
        run(fresh_engine.sleep(1))
        assert fresh_engine.prefix_cache_tokens == 0 and fresh_engine.batch.cache is None
        run(fresh_engine.sleep(2))
        assert all(p.device.type == "meta" for p in fresh_engine.model.parameters())
        run(fresh_engine.wake_up())
        with pytest.raises(EngineStateError, match="every weight must be received again"):
            run(fresh_engine.generate(greedy(prompts()[0], 4)))

    def test_same_seed_same_tokens_whatever_the_batch(self, model_path):
        requests = [GenerationRequest(prompt_token_ids=p, sampling=SamplingParams(max_tokens=8)) for p in prompts()]

        def sample(seed, together):
            engine = HFEngine(model_path=model_path, seed=seed, device="cpu")
            if together:
                return [r.token_ids for r in run(generate_all(engine, requests))]
            return [run(engine.generate(r)).token_ids for r in requests]  # same order, one at a time

        first = sample(7, together=True)
        assert first == sample(7, together=True) == sample(7, together=False)
        assert first != sample(8, together=True)

    def test_mixed_sampling_params_share_a_batch(self, engine):
        alone = [run(engine.generate(greedy(p, 6))).token_ids for p in prompts()]
        requests = [greedy(p, 6) if i % 2 else GenerationRequest(prompt_token_ids=p, sampling=SamplingParams(
            temperature=0.9, top_k=20, top_p=0.9, min_p=0.01, repetition_penalty=1.3, max_tokens=6))
            for i, p in enumerate(prompts())]
        results = run(generate_all(engine, requests))
        assert [results[i].token_ids for i in (1, 3)] == [alone[i] for i in (1, 3)]

    @pytest.mark.parametrize("sampling", [dict(top_k=1), dict(top_p=1e-6), dict(min_p=1.0)])
    def test_extreme_truncation_is_greedy_but_logprobs_use_the_full_distribution(self, engine, sampling):
        prompt = prompts()[1]
        expected = run(engine.generate(greedy(prompt)))
        result = run(engine.generate(GenerationRequest(prompt_token_ids=prompt,
                                                       sampling=SamplingParams(max_tokens=16, **sampling))))
        assert result.token_ids == expected.token_ids
        assert result.logprobs == pytest.approx(expected.logprobs, abs=1e-6)

    def test_repetition_penalty_avoids_seen_tokens(self, engine):
        prompt = prompts()[1]
        result = run(engine.generate(greedy(prompt, 20, repetition_penalty=1e3)))
        assert len(set(result.token_ids)) == len(result.token_ids) and not set(result.token_ids) & set(prompt)

    def test_max_batch_size_queues_the_rest(self, model_path):
        engine = HFEngine(model_path=model_path, device="cpu", config=HFEngineConfig(max_batch_size=2))
        sizes = []
        step = engine.batch.step

        def recording(admitted, dropped):
            finished = step(admitted, dropped)
            sizes.append(len(engine.batch.rows))
            return finished

        engine.batch.step = recording
        results = run(generate_all(engine, [greedy(p, 5, stop_token_ids=[]) for p in prompts()]))
        assert max(sizes) == 2 and all(len(r.token_ids) <= 5 for r in results)

    def test_tensor_parallel_is_refused(self, model_path):
        with pytest.raises(Exception, match="not supported yet by the hf backend"):
            HFEngine(model_path=model_path, tensor_parallel_size=2)

    def test_engine_is_usable_from_several_event_loops(self, engine):
        """``asyncio.run`` per call (as synchronous drivers do) works: the decode loop lives only while there is
        work."""
        first = run(engine.generate(greedy(prompts()[0], 3)))
        second = asyncio.run(engine.generate(greedy(prompts()[0], 3)))
        assert first.token_ids == second.token_ids

    def test_shutdown_refuses_further_calls(self, fresh_engine):
        run(fresh_engine.shutdown())
        with pytest.raises(EngineStateError, match="shut down"):
            run(fresh_engine.generate(greedy(prompts()[0], 2)))


# -- sampling maths, by hand ---------------------------------------------------------------------------------------


def test_penalty_divides_positive_and_multiplies_negative_seen_logits():
    logits = torch.tensor([[2.0, -1.0, 3.0]])
    seen = torch.tensor([[True, True, False]])
    assert penalise(logits, seen, torch.tensor([[2.0]])).tolist() == [[1.0, -2.0, 3.0]]


def test_truncation_per_row_by_hand():
    # Probabilities of row 0: softmax([ln 4, ln 3, ln 2, ln 1]) = [0.4, 0.3, 0.2, 0.1].
    row = torch.log(torch.tensor([4.0, 3.0, 2.0, 1.0]))
    scaled = torch.stack([row] * 4)
    out = truncate(scaled, top_k=torch.tensor([2, 0, 0, -1]), top_p=torch.tensor([1.0, 0.65, 1.0, 1.0]),
                   min_p=torch.tensor([0.0, 0.0, 0.6, 0.0]))
    kept = (out > -math.inf).tolist()
    assert kept[0] == [True, True, False, False]  # top-2
    assert kept[1] == [True, True, False, False]  # mass before token 3 is 0.7 >= 0.65: dropped; token 2 (0.4) kept
    assert kept[2] == [True, True, False, False]  # 0.2 < 0.6 * 0.4 = 0.24
    assert kept[3] == [True, True, True, True]  # all off


def test_inverse_transform_by_hand():
    # cdf of [0.5, 0, 0.25, 0.25] is [0.5, 0.5, 0.75, 1.0]: u in [0, 0.5) -> 0, [0.5, 0.75) -> 2, [0.75, 1) -> 3
    probs = torch.tensor([[0.5, 0.0, 0.25, 0.25]] * 6)
    uniforms = torch.tensor([0.0, 0.49, 0.5, 0.74, 0.75, 0.9999])
    assert inverse_transform(probs, uniforms).tolist() == [0, 0, 2, 2, 3, 3]
    # unnormalised probabilities scale with their total
    assert inverse_transform(torch.tensor([[1.0, 0.0, 3.0]] * 2), torch.tensor([0.2, 0.25])).tolist() == [0, 2]


def test_sampled_frequencies_follow_the_truncated_distribution():
    # softmax([ln 4, ln 3, ln 2, ln 1]) = [0.4, 0.3, 0.2, 0.1]; top_k=3 renormalises to [4/9, 3/9, 2/9, 0]
    logits = torch.log(torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 64))
    rows = [RowSampling(params=SamplingParams(top_k=3), generator=torch.Generator().manual_seed(i)) for i in range(64)]
    counts = torch.zeros(4)
    for _ in range(150):
        tokens, logprobs = sample(logits, rows)
        counts += torch.bincount(torch.tensor(tokens), minlength=4)
        assert logprobs == pytest.approx([math.log([0.4, 0.3, 0.2, 0.1][t]) for t in tokens], abs=1e-6)
    frequencies = (counts / counts.sum()).tolist()  # 9,600 draws: standard error below 0.006
    assert frequencies == pytest.approx([4 / 9, 3 / 9, 2 / 9, 0.0], abs=0.025)
    assert counts[3] == 0



def test_a_failing_step_fails_its_requests_instead_of_hanging(tmp_path):
    from skyrl_core.testing.tiny_model import make_tiny_model

    engine = HFEngine(model_path=str(make_tiny_model(tmp_path, arch="qwen2", seed=0)), device="cpu")
    bad = GenerationRequest(prompt_token_ids=[10**6], sampling=SamplingParams(max_tokens=2))  # outside the vocab
    with pytest.raises(IndexError):
        run(asyncio.wait_for(generate_all(engine, [bad, bad]), 30))
    assert run(engine.generate(greedy([5, 6, 7], 2))).token_ids  # the engine still serves


def test_growing_layer_matches_concatenation_through_growth_selection_and_trimming():
    from skyrl_core.inference.hf_kv import GrowingLayer

    keys, values = torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4)
    layer = GrowingLayer(keys, values)
    for _ in range(80):  # past the first buffer's capacity (5 + 32 columns) twice
        new_keys, new_values = torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4)
        keys, values = torch.cat([keys, new_keys], -2), torch.cat([values, new_values], -2)
        out_keys, out_values = layer.update(new_keys, new_values)
        assert torch.equal(out_keys, keys) and torch.equal(out_values, values)
    layer.batch_select_indices(torch.tensor([2, 0]))
    layer.drop_left(7)
    keys, values = keys[[2, 0], :, 7:], values[[2, 0], :, 7:]
    assert torch.equal(layer.keys, keys) and layer.get_seq_length() == 78
    new_keys = torch.randn(2, 2, 1, 4)
    assert torch.equal(layer.update(new_keys, new_keys)[0], torch.cat([keys, new_keys], -2))


def _tied_tiny_model(tmp_path):
    from transformers import AutoModelForCausalLM

    from skyrl_core.testing.tiny_model import make_tiny_model

    path = make_tiny_model(tmp_path / "untied", seed=5)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.config.tie_word_embeddings = True
    model.lm_head.weight = model.model.embed_tokens.weight
    model.save_pretrained(tmp_path / "tied")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (path / name).is_file():
            (tmp_path / "tied" / name).write_bytes((path / name).read_bytes())
    return tmp_path / "tied"


def test_bf16_engine_computes_like_the_trainers_bf16_autocast(tmp_path):
    from transformers import AutoModelForCausalLM

    from skyrl_core.mixed_precision import run_output_head_in_float32
    from skyrl_core.workers.logprobs import response_logprobs

    path = _tied_tiny_model(tmp_path)
    engine = HFEngine(model_path=str(path), dtype="bfloat16", device="cpu")
    model = engine.model
    # the eager attention on both sides: its bf16 results do not depend on the number of queries per call (the
    # fused one's do), so every other difference between decoding and the trainer's forward would show
    model.set_attn_implementation("eager")
    assert engine.weight_transfer_dtype == "float32"
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    # the output head stays fp32 and tied to the (fp32) input embedding, and computes fp32 logits under autocast
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.lm_head.weight.dtype == torch.float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.tensor([prompts()[0]])).logits.dtype == torch.float32
    trainer = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    run_output_head_in_float32(trainer)  # what the ddp strategy does under trainer.bf16

    def gap() -> float:
        prompt = prompts()[0]
        result = run(engine.generate(GenerationRequest(prompt_token_ids=prompt, seed=3,
                                                       sampling=SamplingParams(max_tokens=12))))
        sequence = torch.tensor([prompt + result.token_ids])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            logprobs, _ = response_logprobs(trainer, sequence, torch.ones_like(sequence), len(result.token_ids))
        return float((logprobs[0] - torch.tensor(result.logprobs)).abs().max())

    assert gap() < 1e-4
    # an update that names only the input embedding (a tied sender) also reaches the engine's output head
    with torch.no_grad():
        trainer.model.embed_tokens.weight.mul_(1.5)
    engine.weights.load([("model.embed_tokens.weight", trainer.model.embed_tokens.weight)])
    run(engine.reset_prefix_cache())
    assert torch.equal(model.lm_head.weight, trainer.model.embed_tokens.weight)
    assert gap() < 1e-4
    run(engine.shutdown())
