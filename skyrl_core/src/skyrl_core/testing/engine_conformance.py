"""``EngineConformance``: inherited pytest tests that check an inference backend against what skyrl expects of it.

A backend's test module subclasses :class:`EngineConformance` in a class named ``Test...``, sets ``engine_cls``
(or overrides :meth:`EngineConformance.build_engine`) and inherits ``test_*`` methods for: generation from token
ids, ``max_tokens``, stop token ids and stop strings, log-probs against a transformers forward pass, greedy
results that do not depend on what else is in the batch, ``probe_logprobs``, weight updates (the output changes
and the engine holds exactly the sent weights), sleep/wake (generation refused until the KV cache is woken,
running requests aborted, a level-2 sleep followed by a full sync), ``abort``, and routing through
:class:`~skyrl_core.inference.client.EngineClient`. See ``docs/plugins/engines.md``.

The model is the tiny offline Qwen2 of :func:`skyrl_core.testing.tiny_model.make_tiny_model` with its matrices
scaled up (so next-token distributions are peaked and greedy choices are far from ties), in float32. Weights travel
over :class:`InlineTransport`, a test-only transport whose requests carry the tensors themselves; it is
registered as ``conformance_inline`` for the duration of each test that uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import torch

from skyrl_core import hookimpl
from skyrl_core.inference.base import (
    EngineStateError,
    GenerationRequest,
    GenerationResult,
    InferenceEngine,
    SamplingParams,
)
from skyrl_core.inference.client import EngineClient
from skyrl_core.weight_sync.base import (
    WeightChunk,
    WeightReceiver,
    WeightSender,
    WeightSyncInitInfo,
    WeightTransport,
    WeightUpdateRequest,
    buckets_of,
)

__all__ = ["EngineConformance", "InlineTransport"]

INLINE = "conformance_inline"
PROMPT_LENGTHS = [5, 17, 1, 9]
MAX_TOKENS = [12, 4, 12, 8]


class InlineSender(WeightSender):
    def prepare(self, chunk: WeightChunk) -> WeightUpdateRequest:
        return WeightUpdateRequest.describe(chunk, payload=[t.cpu() for t in chunk.tensors])

    def send(self, chunk: WeightChunk) -> None:
        """Nothing to do: the tensors travel in the request."""


class InlineReceiver(WeightReceiver):
    def receive(self, request: WeightUpdateRequest, device: torch.device) -> Iterator[tuple[str, torch.Tensor]]:
        for name, tensor in zip(request.names, request.payload, strict=True):
            yield name, tensor.to(device)


class InlineTransport(WeightTransport):
    """A test-only transport: the request's payload is the chunk's tensors (CPU)."""

    sender_cls = InlineSender
    receiver_cls = InlineReceiver
    device_types = ("cpu", "cuda")
    needs_rendezvous = False


class _InlinePlugin:
    @hookimpl
    def register_weight_sync_backends(self, register: Any) -> None:
        register(INLINE, InlineTransport, description="test-only: tensors inside the request")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def greedy(prompt: list[int], max_tokens: int = 16, **sampling: Any) -> GenerationRequest:
    return GenerationRequest(prompt_token_ids=prompt,
                             sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens, **sampling))


def prompts(lengths: list[int] = PROMPT_LENGTHS, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 500, (n,), generator=g).tolist() for n in lengths]


async def generate_all(engine: Any, requests: list[GenerationRequest]) -> list[GenerationResult]:
    return list(await asyncio.gather(*(engine.generate(r) for r in requests)))


class EngineConformance:
    """Base class of a backend's conformance tests (see the module doc)."""

    #: The engine class under test (constructed by :meth:`build_engine`).
    engine_cls: ClassVar[type[InferenceEngine]]
    #: Largest allowed difference between the engine's log-probs and a float32 transformers forward pass.
    logprob_atol: ClassVar[float] = 1e-4

    @classmethod
    def build_engine(cls, model_path: str, seed: int = 0) -> InferenceEngine:
        """An engine on ``model_path`` in float32 (override, as a classmethod, to pass backend options)."""
        return cls.engine_cls(config=None, model_path=model_path, dtype="float32", seed=seed, tensor_parallel_size=1)

    # -- fixtures -----------------------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def model_path(cls, tmp_path_factory: pytest.TempPathFactory) -> str:
        from transformers import AutoModelForCausalLM

        from skyrl_core.testing.tiny_model import make_tiny_model

        path = make_tiny_model(tmp_path_factory.mktemp("conformance") / "model", arch="qwen2", seed=0)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.ndim == 2:
                    parameter.mul_(5.0)
        model.save_pretrained(path)
        return str(path)

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls, model_path: str) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()

    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls, model_path: str) -> Iterator[InferenceEngine]:
        """Shared by the tests that leave the engine as they found it."""
        engine = cls.build_engine(model_path)
        yield engine
        run(engine.shutdown())

    @pytest.fixture
    def fresh_engine(self, model_path: str) -> Iterator[InferenceEngine]:
        engine = self.build_engine(model_path)
        yield engine
        run(engine.shutdown())

    @pytest.fixture
    def inline_transport(self, register_plugin: Any) -> WeightSyncInitInfo:
        register_plugin(_InlinePlugin())
        return WeightSyncInitInfo(transport=INLINE, master_addr="127.0.0.1", master_port=0, world_size=2)

    # -- generation ---------------------------------------------------------------------------------------------

    def test_generates_from_token_ids(self, engine: InferenceEngine, reference: Any) -> None:
        requests = [GenerationRequest(prompt_token_ids=p, sampling=SamplingParams(max_tokens=m))
                    for p, m in zip(prompts(), MAX_TOKENS, strict=True)]
        for result, m in zip(run(generate_all(engine, requests)), MAX_TOKENS, strict=True):
            assert 1 <= len(result.token_ids) == len(result.logprobs) <= m
            assert result.stop_reason == "stop" or (result.stop_reason == "length" and len(result.token_ids) == m)
            assert all(0 <= t < reference.config.vocab_size for t in result.token_ids)
            assert all(lp <= 0.0 for lp in result.logprobs)

    def test_max_tokens_gives_length(self, engine: InferenceEngine) -> None:
        result = run(engine.generate(greedy(prompts()[0], max_tokens=3, stop_token_ids=[])))
        assert len(result.token_ids) <= 3
        assert result.stop_reason == ("length" if len(result.token_ids) == 3 else "stop")

    @pytest.mark.parametrize("temperature", [1.0, 0.7])
    def test_logprobs_match_a_forward_pass(self, engine: InferenceEngine, reference: Any, temperature: float) -> None:
        requests = [GenerationRequest(prompt_token_ids=p,
                                      sampling=SamplingParams(max_tokens=m, temperature=temperature))
                    for p, m in zip(prompts(), MAX_TOKENS, strict=True)]
        for prompt, result in zip(prompts(), run(generate_all(engine, requests)), strict=True):
            expected = _forward_logprobs(reference, prompt, result.token_ids, temperature)
            assert torch.allclose(torch.tensor(result.logprobs), expected, atol=self.logprob_atol), (
                f"log-probs differ from log_softmax(logits / T) of a forward pass by "
                f"{(torch.tensor(result.logprobs) - expected).abs().max():.3g}")

    def test_greedy_does_not_depend_on_the_batch(self, engine: InferenceEngine, reference: Any) -> None:
        """Greedy tokens are the same alone, all at once, and arriving while others decode; and they are the
        argmax of a forward pass."""
        requests = [greedy(p, m) for p, m in zip(prompts(), [12, 12, 6, 9], strict=True)]

        async def staggered() -> list[GenerationResult]:
            async def late(request: GenerationRequest, delay: float) -> GenerationResult:
                await asyncio.sleep(delay)
                return await engine.generate(request)

            return list(await asyncio.gather(*(late(r, 0.01 * i) for i, r in enumerate(requests))))

        together = run(generate_all(engine, requests))
        alone = [run(engine.generate(r)) for r in requests]
        mixed = run(staggered())
        for prompt, a, b, c in zip(prompts(), together, alone, mixed, strict=True):
            assert a.token_ids == b.token_ids == c.token_ids
            with torch.no_grad():
                logits = reference(input_ids=torch.tensor([prompt + a.token_ids])).logits[0, len(prompt) - 1 : -1]
            assert a.token_ids == logits.argmax(-1).tolist()

    def test_stop_token_ids(self, engine: InferenceEngine) -> None:
        prompt = prompts()[2]
        full = run(engine.generate(greedy(prompt))).token_ids
        stop_token = full[5]
        result = run(engine.generate(greedy(prompt, stop_token_ids=[stop_token])))
        assert result.token_ids == full[: full.index(stop_token) + 1] and result.stop_reason == "stop"

    def test_stop_strings(self, engine: InferenceEngine, model_path: str) -> None:
        from transformers import AutoTokenizer

        decode = AutoTokenizer.from_pretrained(model_path).decode
        prompt = prompts()[3]
        full = run(engine.generate(greedy(prompt, max_tokens=24))).token_ids
        for k in range(4, len(full)):
            stop = decode(full[:k])[-3:]
            if stop.strip() and stop not in decode(full[: k - 1]):
                break
        else:
            pytest.fail("no usable stop string in the greedy output")
        result = run(engine.generate(greedy(prompt, max_tokens=24, stop=[stop, "never produced \u2603"])))
        assert result.token_ids == full[:k] and result.stop_reason == "stop"

    def test_probe_logprobs(self, engine: InferenceEngine, reference: Any) -> None:
        tokens = prompts()[1]
        expected = _forward_logprobs(reference, tokens[:1], tokens[1:], 1.0)
        assert torch.allclose(torch.tensor(run(engine.probe_logprobs(tokens))), expected, atol=self.logprob_atol)

    def test_routing_through_the_client(self, engine: InferenceEngine, model_path: str) -> None:
        other = self.build_engine(model_path, seed=1)
        served: list[tuple[str | None, int]] = []

        class Recording:
            def __init__(self, inner: Any, number: int) -> None:
                self.inner, self.number = inner, number

            async def generate(self, request: GenerationRequest) -> GenerationResult:
                served.append((request.session_id, self.number))
                return await self.inner.generate(request)

        client = EngineClient([Recording(engine, 0), Recording(other, 1)])
        requests = [greedy(p, 6) for p in prompts()]
        sessions = [GenerationRequest(prompt_token_ids=r.prompt_token_ids, sampling=r.sampling,
                                      session_id=f"trajectory-{i % 3}") for i, r in enumerate(requests * 2)]
        try:
            results = run(generate_all(client, sessions))
            expected = run(generate_all(engine, requests))
        finally:
            run(other.shutdown())
        assert [r.token_ids for r in results] == [r.token_ids for r in expected * 2]
        owners: dict[str | None, set[int]] = {}
        for session, number in served:
            owners.setdefault(session, set()).add(number)
        assert all(owners[s] == {client.engine_of_session(s)} for s in owners)  # type: ignore[arg-type]

    # -- abort and memory ---------------------------------------------------------------------------------------

    def test_abort(self, fresh_engine: InferenceEngine) -> None:
        long = SamplingParams(max_tokens=1500, temperature=1.0)

        async def main() -> tuple[list[GenerationResult], GenerationResult]:
            # many sampled rows, so that some are still running when the abort arrives: a fast engine can finish a
            # few rows of a small random model by EOS within the wait
            tasks = [asyncio.ensure_future(fresh_engine.generate(
                GenerationRequest(prompt_token_ids=p, sampling=long, request_id=f"long-{i}")))
                for i, p in enumerate(prompts() * 8)]
            short = asyncio.ensure_future(fresh_engine.generate(greedy(prompts()[0], 8)))
            await asyncio.sleep(0.3)
            await fresh_engine.abort([f"long-{i}" for i in range(len(tasks))])
            return list(await asyncio.wait_for(asyncio.gather(*tasks), 30)), await short

        aborted, short = run(main())
        assert all(r.stop_reason in ("abort", "stop") and len(r.token_ids) < 1500 for r in aborted)
        assert any(r.stop_reason == "abort" for r in aborted)
        assert all(len(r.token_ids) == len(r.logprobs) for r in aborted)
        assert short.stop_reason != "abort"

    def test_sleep_refuses_generation_until_the_kv_cache_wakes(self, fresh_engine: InferenceEngine) -> None:
        request = greedy(prompts()[1], 6)
        before = run(fresh_engine.generate(request))
        run(fresh_engine.sleep(1))
        assert not run(fresh_engine.sleep_state()).awake
        with pytest.raises(EngineStateError):
            run(fresh_engine.generate(request))
        run(fresh_engine.wake_up(["weights"]))
        state = run(fresh_engine.sleep_state())
        assert state.weights == "device" and not state.kv_cache
        with pytest.raises(EngineStateError):
            run(fresh_engine.generate(request))
        run(fresh_engine.wake_up(["kv_cache"]))
        assert run(fresh_engine.sleep_state()).awake
        assert run(fresh_engine.generate(request)).token_ids == before.token_ids  # level 1 keeps the weights

    def test_sleep_aborts_running_requests(self, fresh_engine: InferenceEngine) -> None:
        async def main() -> list[GenerationResult]:
            # many sampled rows, so that some are still running when the engine sleeps: a fast engine can finish a
            # few rows of a small random model by EOS before the sleep call arrives
            tasks = [asyncio.ensure_future(fresh_engine.generate(
                GenerationRequest(prompt_token_ids=p, sampling=SamplingParams(max_tokens=1500))))
                for p in prompts() * 8]
            await asyncio.sleep(0.05)
            await fresh_engine.sleep(1)
            return list(await asyncio.wait_for(asyncio.gather(*tasks), 30))

        results = run(main())
        assert any(r.stop_reason == "abort" for r in results), [(r.stop_reason, len(r.token_ids)) for r in results]

    # -- weights ------------------------------------------------------------------------------------------------

    def test_weight_update_changes_output_and_matches_the_source(
        self, fresh_engine: InferenceEngine, reference: Any, inline_transport: WeightSyncInitInfo
    ) -> None:
        request = greedy(prompts()[1], 12)
        before = run(fresh_engine.generate(request)).token_ids
        new = _new_weights(reference)
        run(_sync(fresh_engine, inline_transport, new))
        after = run(fresh_engine.generate(request)).token_ids
        assert after != before
        self._check_holds(fresh_engine, reference, new)

    def test_level_two_sleep_then_a_full_sync(
        self, fresh_engine: InferenceEngine, reference: Any, inline_transport: WeightSyncInitInfo
    ) -> None:
        new = _new_weights(reference)
        run(fresh_engine.sleep(2))
        run(fresh_engine.wake_up(["weights"]))
        run(_sync(fresh_engine, inline_transport, new))
        run(fresh_engine.wake_up(["kv_cache"]))
        self._check_holds(fresh_engine, reference, new)
        assert run(fresh_engine.generate(greedy(prompts()[0], 4))).token_ids

    def _check_holds(self, engine: InferenceEngine, reference: Any, new: dict[str, torch.Tensor]) -> None:
        """The engine's probe agrees with a forward pass under ``new``; its weights equal ``new`` exactly."""
        original = {k: v.clone() for k, v in reference.state_dict().items()}
        tokens = prompts()[1]
        try:
            reference.load_state_dict(new)
            expected = _forward_logprobs(reference, tokens[:1], tokens[1:], 1.0)
        finally:
            reference.load_state_dict(original)
        assert torch.allclose(torch.tensor(run(engine.probe_logprobs(tokens))), expected, atol=self.logprob_atol)
        try:
            held = run(engine.state_dict())
        except NotImplementedError:
            return
        for name, tensor in new.items():
            assert torch.equal(held[name].float(), tensor), f"{name} differs from the weights sent"


def _forward_logprobs(model: Any, prompt: list[int], completion: list[int], temperature: float) -> torch.Tensor:
    """``log_softmax(logits / T)`` of each completion token, from one unpadded forward over prompt + completion."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + completion])).logits[0].float()[len(prompt) - 1 : -1]
    return torch.log_softmax(logits / temperature, -1).gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def _new_weights(reference: Any) -> dict[str, torch.Tensor]:
    """Every weight of the reference model, with the matrices' rows rolled by one (same values, new function)."""
    return {name: (t.roll(1, 0) if t.ndim == 2 else t).detach().clone() for name, t in reference.state_dict().items()}


async def _sync(engine: InferenceEngine, info: WeightSyncInitInfo, weights: dict[str, torch.Tensor]) -> None:
    """What the trainer does: receivers once, then every chunk (small ones: several per sync), then a reset."""
    sender = InlineTransport.sender_cls(init_info=info)
    await engine.init_weight_receivers(info, 1)
    for chunk in buckets_of(weights.items(), dtype=torch.float32, bucket_bytes=1 << 16):
        await engine.update_weights(sender.prepare(chunk))
    await engine.reset_prefix_cache()

