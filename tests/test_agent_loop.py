"""The default agent loop (token accounting, budgets, env failures) and the engine client, with scripted engines."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time

import pytest
from transformers import AutoTokenizer

from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput, hookimpl
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import UserError
from skyrl_core.generator import AgentLoopGenerator, GeneratorInput, GeneratorOutput
from skyrl_core.inference.base import GenerationRequest, GenerationResult, SamplingParams
from skyrl_core.inference.client import EngineClient

QUESTION = [{"role": "user", "content": "What is 2 * 3?"}]
LOGPROB = -0.25
SLOW_S = 0.6


# -- fakes --------------------------------------------------------------------------------------------------------


class ScriptedEngine:
    """Answers turn k of a session with ``replies[k]`` (tokenised, then EOS), each token with log-prob ``LOGPROB``.

    ``max_tokens`` cuts a reply (stop reason ``"length"``, no EOS); a stop string ends it right after the string
    (stop reason ``"stop"``, no EOS). Every request is recorded, with the time it arrived.
    """

    def __init__(self, tokenizer, replies):
        self.tokenizer = tokenizer
        self.replies = replies
        self.requests: list[GenerationRequest] = []
        self.arrivals: list[float] = []
        self.turn_of: dict[str | None, int] = {}

    async def generate(self, request):
        self.requests.append(request)
        self.arrivals.append(time.monotonic())
        await asyncio.sleep(0)
        turn = self.turn_of.get(request.session_id, 0)
        self.turn_of[request.session_id] = turn + 1
        text = self.replies[min(turn, len(self.replies) - 1)]
        stop_reason, eos = "stop", [self.tokenizer.eos_token_id]
        for stop in request.sampling.stop or ():
            if stop in text:
                text, eos = text[: text.index(stop) + len(stop)], []
        ids = self.tokenizer.encode(text, add_special_tokens=False) + eos
        if len(ids) > request.sampling.max_tokens:
            ids, stop_reason = ids[: request.sampling.max_tokens], "length"
        return GenerationResult(token_ids=ids, logprobs=[LOGPROB] * len(ids), stop_reason=stop_reason)


class ObserveThenFinish(BaseTextEnv):
    """Turn 1: reward 0.25 and an observation; turn 2: reward 1.0, done."""

    def step(self, action):
        self.turns += 1
        if self.turns == 1:
            return BaseTextEnvStepOutput(observations=[{"role": "user", "content": "Try again."}], reward=0.25)
        return BaseTextEnvStepOutput(reward=1.0, done=True)


class NeverDone(BaseTextEnv):
    """Always asks for another turn with ``extras["observation"]`` (default: no observation messages)."""

    def step(self, action):
        content = self.extras.get("observation")
        return BaseTextEnvStepOutput(observations=[{"role": "user", "content": content}] if content else [], reward=0.5)

    def get_metrics(self):
        return {"steps": 1.0, "extra": float(self.extras.get("tag", 0))}


class Failing(BaseTextEnv):
    """Raises, hangs (until released) or returns garbage from ``step``, per ``extras["mode"]``."""

    release = threading.Event()
    closed: list[str] = []

    def __init__(self, env_config=None, extras=None):
        super().__init__(env_config, extras)
        if self.extras.get("mode") == "constructor":
            raise RuntimeError("cannot build")

    def step(self, action):
        mode = self.extras.get("mode")
        if mode == "raise":
            raise ValueError("grader exploded")
        if mode == "hang":
            Failing.release.wait(10)
        if mode == "bad_type":
            return 1.0
        if mode == "bad_reward":
            return {"observations": [], "reward": "high", "done": True}
        if mode == "dict":
            return {"observations": [], "reward": 0.75, "done": True}
        return BaseTextEnvStepOutput(reward=1.0, done=True)

    def close(self):
        Failing.closed.append(self.extras.get("mode"))


# The overview's MultiplyEnv, unchanged apart from its import lines.
class MultiplyEnv(BaseTextEnv):
   def _parse_action(self, action: str) -> str:
      """Extract answer from \\boxed{answer} format"""
      match = re.search(r"\\boxed\{([^}]+)\}", action)
      return match.group(1) if match else None

   def step(self, action: str) -> BaseTextEnvStepOutput:
      answer = self._parse_action(action)
      is_correct = answer is not None and answer.strip() == str(self.ground_truth).strip()

      return BaseTextEnvStepOutput(
         observations=[],
         reward=1.0 if is_correct else 0.0,
         done=True,
         metadata={"parsed_answer": answer}
      )


class SlowOnItsTurn(BaseTextEnv):
    """Never done; trajectory ``extras["slow_turn"]`` sleeps ``SLOW_S`` in its step of that turn (0-based)."""

    def step(self, action):
        if self.extras["slow_turn"] == self.turns:
            time.sleep(SLOW_S)
        self.turns += 1
        return BaseTextEnvStepOutput(reward=1.0)


ENVS = {"t_slow": SlowOnItsTurn, "t_observe": ObserveThenFinish, "t_never_done": NeverDone, "t_failing": Failing,
        "t_multiply": MultiplyEnv}


class _EnvPlugin:
    @hookimpl
    def register_environments(self, register):
        for name, cls in ENVS.items():
            register(name, cls)


# -- helpers ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path):
    return AutoTokenizer.from_pretrained(tiny_model_path)


@pytest.fixture
def pm(plugin_manager, register_plugin):
    register_plugin(_EnvPlugin())
    return plugin_manager


def make_config(**generator):
    config = SkyRLConfig()
    config.environment.max_env_workers = 4
    config.environment.step_timeout_s = 5.0
    for key, value in generator.items():
        setattr(config.generator, key, value)
    return config


def make_generator(pm, tokenizer, engine, config=None):
    return AgentLoopGenerator(
        run_config=config or make_config(), tokenizer=tokenizer, engine_client=EngineClient([engine]), plugin_manager=pm
    )


def run(pm, tokenizer, engine, env_class, n=1, extras=None, config=None, phase="train", progress=None, **sampling):
    generator = make_generator(pm, tokenizer, engine, config)
    generator.on_progress = progress
    batch = GeneratorInput(
        prompts=[QUESTION] * n,
        env_classes=[env_class] * n,
        env_extras=extras or [{} for _ in range(n)],
        group_ids=list(range(n)),
        sampling=SamplingParams(**{"max_tokens": 64, **sampling}),
        phase=phase,
    )
    out = generator.generate(batch)
    check_shapes(out, n)
    return out


def check_shapes(out: GeneratorOutput, n: int) -> None:
    assert len(out) == n
    for i in range(n):
        size = len(out.response_ids[i])
        assert len(out.loss_masks[i]) == len(out.token_rewards[i]) == len(out.rollout_logprobs[i]) == size


def ids(tokenizer, text, eos=True):
    return tokenizer.encode(text, add_special_tokens=False) + ([tokenizer.eos_token_id] if eos else [])


def template(tokenizer, messages, generation_prompt):
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=False
    )


# -- the loop -----------------------------------------------------------------------------------------------------


def test_single_turn_reward_on_last_token_and_loss_mask(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["The answer is \\boxed{6}."])
    out = run(pm, tokenizer, engine, "t_multiply", extras=[{"reward_spec": {"ground_truth": "6"}}])
    expected = ids(tokenizer, "The answer is \\boxed{6}.")
    assert out.prompt_token_ids[0] == template(tokenizer, QUESTION, True)
    assert out.response_ids[0] == expected
    assert out.loss_masks[0] == [1] * len(expected)
    assert out.rollout_logprobs[0] == [LOGPROB] * len(expected)
    assert out.token_rewards[0] == [0.0] * (len(expected) - 1) + [1.0]
    assert out.rewards == [1.0] and out.stop_reasons == ["stop"] and out.num_turns == [1]
    assert out.env_classes == ["t_multiply"] and out.num_env_errors == out.num_env_timeouts == 0


def test_overview_multiply_env_runs_unchanged(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["\\boxed{6}"])
    extras = [{"reward_spec": {"ground_truth": 6}}, {"reward_spec": {"ground_truth": 7}}]
    out = run(pm, tokenizer, engine, "t_multiply", n=2, extras=extras)
    assert out.rewards == [1.0, 0.0]


def test_multi_turn_token_in_token_out(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["I think it is 5.", "It is \\boxed{6}."])
    out = run(pm, tokenizer, engine, "t_observe", config=make_config(max_turns=3))
    gen1, gen2 = ids(tokenizer, "I think it is 5."), ids(tokenizer, "It is \\boxed{6}.")
    prompt, response = out.prompt_token_ids[0], out.response_ids[0]
    assert response[: len(gen1)] == gen1 and response[-len(gen2) :] == gen2
    n_obs = len(response) - len(gen1) - len(gen2)
    assert n_obs > 0
    assert out.loss_masks[0] == [1] * len(gen1) + [0] * n_obs + [1] * len(gen2)
    assert out.rollout_logprobs[0] == [LOGPROB] * len(gen1) + [0.0] * n_obs + [LOGPROB] * len(gen2)
    rewards = [0.0] * len(response)
    rewards[len(gen1) - 1], rewards[-1] = 0.25, 1.0
    assert out.token_rewards[0] == rewards and out.rewards == [1.25] and out.num_turns == [2]
    # The second turn's input is exactly the first turn's tokens plus the observation tokens.
    assert engine.requests[1].prompt_token_ids == prompt + response[: len(gen1) + n_obs]
    assert len({r.session_id for r in engine.requests}) == 1
    assert len({r.request_id for r in engine.requests}) == 2
    # Decoding prompt + response gives the chat template's rendering of the whole conversation (up to the "\n"
    # that follows the last <|im_end|>): the appended tokens are the template's own.
    conversation = QUESTION + [
        {"role": "assistant", "content": "I think it is 5."},
        {"role": "user", "content": "Try again."},
        {"role": "assistant", "content": "It is \\boxed{6}."},
    ]
    rendered = tokenizer.apply_chat_template(conversation, tokenize=False)
    assert tokenizer.decode(prompt + response) + "\n" == rendered
    assert prompt + response + tokenizer.encode("\n") == template(tokenizer, conversation, False)


def test_a_slow_env_step_delays_only_its_own_trajectory(pm, tokenizer):
    # On turn k, trajectory k's env step is slow. Turn by turn with a barrier, that is one slow step per turn
    # (3 x SLOW_S); with one coroutine per trajectory the three slow steps overlap (about 1 x SLOW_S).
    engine = ScriptedEngine(tokenizer, ["x"])
    extras = [{"slow_turn": k} for k in range(3)]
    start = time.monotonic()
    out = run(pm, tokenizer, engine, "t_slow", n=3, extras=extras, config=make_config(max_turns=3))
    elapsed = time.monotonic() - start
    assert out.num_turns == [3, 3, 3] and out.rewards == [3.0, 3.0, 3.0]
    assert SLOW_S <= elapsed < 2 * SLOW_S, f"took {elapsed:.2f}s"
    # Trajectory 2 sent its third turn before trajectory 0's slow first step had finished.
    third_turns = [t for r, t in zip(engine.requests, engine.arrivals) if r.request_id.endswith("-2-2")]
    assert third_turns and third_turns[0] - start < SLOW_S


def test_progress_counts_finished_trajectories(pm, tokenizer):
    seen = []
    run(pm, tokenizer, ScriptedEngine(tokenizer, ["x"]), "t_never_done", n=3, progress=lambda f, t: seen.append((f, t)))
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and {t for _, t in seen} == {3}


def test_batched_mode_sends_every_request_before_any_env_step(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["\\boxed{6}"])
    steps = []
    original = MultiplyEnv.step
    MultiplyEnv.step = lambda self, action: steps.append(time.monotonic()) or original(self, action)
    try:
        extras = [{"reward_spec": {"ground_truth": "6"}}] * 4
        out = run(pm, tokenizer, engine, "t_multiply", n=4, extras=extras, config=make_config(batched=True))
    finally:
        MultiplyEnv.step = original
    assert out.rewards == [1.0] * 4 and len(engine.requests) == 4
    assert max(engine.arrivals) <= min(steps)
    with pytest.raises(UserError, match="generator.batched=true is single-turn"):
        make_generator(pm, tokenizer, engine, make_config(batched=True, max_turns=2))


def test_max_turns_caps_the_episode_and_empty_observations_continue(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["one", "two", "three"])
    out = run(pm, tokenizer, engine, "t_never_done", config=make_config(max_turns=2))
    gen1, gen2 = ids(tokenizer, "one"), ids(tokenizer, "two")
    # No observation messages: only "\n" after <|im_end|> and the next generation prompt are inserted.
    between = tokenizer.encode("\n<|im_start|>assistant\n")
    assert out.response_ids[0] == gen1 + between + gen2
    assert out.num_turns == [2] and out.stop_reasons == ["stop"] and out.rewards == [1.0]


def test_env_metrics_are_aggregated_per_env_class(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["x"])
    out = run(pm, tokenizer, engine, "t_never_done", n=2, extras=[{"tag": 1}, {"tag": 3}])
    assert out.env_metrics == {"environment/t_never_done/steps": 1.0, "environment/t_never_done/extra": 2.0}


def test_stop_string_gets_eos_with_loss_mask_zero(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["call tool</tool> ignored", "done"])
    out = run(pm, tokenizer, engine, "t_observe", config=make_config(max_turns=2), stop=["</tool>"])
    gen1 = ids(tokenizer, "call tool</tool>", eos=False)
    response = out.response_ids[0]
    assert response[: len(gen1)] == gen1 and response[len(gen1)] == tokenizer.eos_token_id
    assert out.loss_masks[0][len(gen1)] == 0
    assert tokenizer.decode(out.prompt_token_ids[0] + response).count("<|im_end|>\n<|im_start|>user\nTry") == 1


def test_length_budget_stops_with_length(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["a short turn"])
    observation = "A long observation that keeps the conversation growing turn after turn."
    turn = len(ids(tokenizer, "a short turn"))
    inserted = len(tokenizer.encode(f"\n<|im_start|>user\n{observation}<|im_end|>\n<|im_start|>assistant\n"))
    # Room for the input of turn 2, not for the input of turn 3.
    budget = len(template(tokenizer, QUESTION, True)) + 2 * turn + inserted
    config = make_config(max_turns=10, max_input_length=budget)
    out = run(pm, tokenizer, engine, "t_never_done", extras=[{"observation": observation}], config=config, max_tokens=8)
    assert out.stop_reasons == ["length"] and out.num_turns == [2]
    assert len(out.prompt_token_ids[0]) + len(out.response_ids[0]) <= config.generator.max_input_length + 8
    assert out.response_ids[0][-1] == tokenizer.eos_token_id  # ends on a generated turn, not on an observation
    for request in engine.requests:
        assert len(request.prompt_token_ids) <= config.generator.max_input_length


def test_turn_cut_by_max_tokens_ends_the_episode(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["a reply that is much longer than four tokens"])
    out = run(pm, tokenizer, engine, "t_never_done", config=make_config(max_turns=5), max_tokens=4)
    assert out.stop_reasons == ["length"] and out.num_turns == [1] and len(out.response_ids[0]) == 4


def test_zero_reward_and_overlong_filtering_in_train_only(pm, tokenizer):
    engine = ScriptedEngine(tokenizer, ["a reply that is much longer than four tokens"])
    config = make_config(zero_reward_on_non_stop=True, apply_overlong_filtering=True)
    out = run(pm, tokenizer, engine, "t_never_done", config=config, max_tokens=4)
    assert out.rewards == [0.0] and out.token_rewards[0] == [0.0] * 4 and out.loss_masks[0] == [0] * 4
    engine = ScriptedEngine(tokenizer, ["a reply that is much longer than four tokens"])
    out = run(pm, tokenizer, engine, "t_never_done", config=config, max_tokens=4, phase="eval")
    assert out.rewards == [0.5] and out.loss_masks[0] == [1] * 4


# -- env failures -------------------------------------------------------------------------------------------------


@pytest.fixture
def failing():
    Failing.release.clear()
    Failing.closed.clear()
    yield Failing
    Failing.release.set()


def test_env_error_fails_only_its_trajectory(pm, tokenizer, failing, caplog):
    engine = ScriptedEngine(tokenizer, ["answer"])
    extras = [{"mode": "ok"}, {"mode": "raise"}, {"mode": "raise"}, {"mode": "constructor"}, {"mode": "ok"}]
    with caplog.at_level(logging.ERROR, logger="skyrl.env"):
        out = run(pm, tokenizer, engine, "t_failing", n=5, extras=extras)
    assert out.rewards == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert out.stop_reasons == ["stop", "abort", "abort", "abort", "stop"]
    assert out.num_env_errors == 3 and out.num_env_timeouts == 0
    assert all(r == 0.0 for i in (1, 2, 3) for r in out.token_rewards[i])
    assert out.response_ids[3] == [] and out.prompt_token_ids[3] == template(tokenizer, QUESTION, True)
    records = [r for r in caplog.records if r.name == "skyrl.env"]
    assert len(records) == 1  # the first traceback only; later ones are counted
    assert "t_failing" in records[0].getMessage() and records[0].exc_info is not None
    assert sorted(failing.closed) == ["ok", "ok", "raise", "raise"]  # every constructed env is closed


def test_env_timeout_returns_promptly(pm, tokenizer, failing):
    engine = ScriptedEngine(tokenizer, ["answer"])
    config = make_config()
    config.environment.step_timeout_s = 0.2
    start = time.monotonic()
    out = run(pm, tokenizer, engine, "t_failing", n=2, extras=[{"mode": "hang"}, {"mode": "ok"}], config=config)
    assert time.monotonic() - start < 2.0
    assert out.num_env_timeouts == 1 and out.num_env_errors == 0
    assert out.rewards == [0.0, 1.0] and out.stop_reasons == ["abort", "stop"]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("bad_type", "must return a BaseTextEnvStepOutput"), ("bad_reward", "reward must be a finite real number")],
)
def test_bad_step_output_is_an_error_naming_the_env(pm, tokenizer, failing, caplog, mode, message):
    engine = ScriptedEngine(tokenizer, ["answer"])
    with caplog.at_level(logging.ERROR, logger="skyrl.env"):
        out = run(pm, tokenizer, engine, "t_failing", extras=[{"mode": mode}])
    assert out.num_env_errors == 1 and out.rewards == [0.0]
    assert "env 't_failing'" in caplog.text and message in caplog.text


def test_dict_step_output_is_accepted(pm, tokenizer, failing):
    out = run(pm, tokenizer, ScriptedEngine(tokenizer, ["x"]), "t_failing", extras=[{"mode": "dict"}])
    assert out.rewards == [0.75] and out.num_env_errors == 0


# -- engine client ------------------------------------------------------------------------------------------------


class TaggingEngine:
    """Returns, per request, the engine's number and the request's first prompt token; ``hold`` keeps requests in
    flight until set."""

    def __init__(self, number):
        self.number = number
        self.hold: asyncio.Event | None = None
        self.calls: list[tuple] = []

    async def generate(self, request):
        await (self.hold.wait() if self.hold is not None else asyncio.sleep(0))
        return GenerationResult(token_ids=[self.number, request.prompt_token_ids[0]], logprobs=[0.0, 0.0],
                                stop_reason="stop")

    async def sleep(self, level):
        self.calls.append(("sleep", level))

    async def wake_up(self, tags):
        self.calls.append(("wake_up", tags))

    async def reset_prefix_cache(self):
        self.calls.append(("reset_prefix_cache",))

    async def abort(self, request_ids):
        self.calls.append(("abort", request_ids))


def test_engine_client_session_stickiness():
    engines = [TaggingEngine(n) for n in range(3)]
    client = EngineClient(engines)
    sessions = [f"s{i % 7}" for i in range(30)]

    async def main():
        return await asyncio.gather(
            *(client.generate(GenerationRequest(prompt_token_ids=[i], session_id=s)) for i, s in enumerate(sessions))
        )

    owner = {}
    for _ in range(2):
        results = asyncio.run(main())
        assert [r.token_ids[1] for r in results] == list(range(30))
        for session, result in zip(sessions, results):
            assert owner.setdefault(session, result.token_ids[0]) == result.token_ids[0]
            assert owner[session] == client.engine_of_session(session)
    assert len(set(owner.values())) > 1


def test_engine_client_sends_loose_requests_to_the_least_loaded_engine():
    engines = [TaggingEngine(n) for n in range(3)]
    client = EngineClient(engines)

    async def main():
        engines[0].hold = asyncio.Event()  # engine 0 keeps its requests in flight
        pinned = [s for s in (f"s{i}" for i in range(50)) if client.engine_of_session(s) == 0][:2]
        held = [asyncio.ensure_future(client.generate(GenerationRequest(prompt_token_ids=[0], session_id=s)))
                for s in pinned]
        await asyncio.sleep(0)
        assert client.in_flight == [2, 0, 0]
        rest = await asyncio.gather(*(client.generate(GenerationRequest(prompt_token_ids=[i])) for i in range(4)))
        engines[0].hold.set()
        return [await held[0]], rest

    (first,), rest = asyncio.run(main())
    assert first.token_ids == [0, 0]
    # Four concurrent requests while engine 0 holds two: they go to engines 1 and 2 only, alternating.
    assert [r.token_ids for r in rest] == [[1, 0], [2, 1], [1, 2], [2, 3]]
    assert client.in_flight == [0, 0, 0]


def test_engine_client_control_calls_reach_every_engine():
    engines = [TaggingEngine(n) for n in range(2)]
    client = EngineClient(engines)

    async def main():
        await client.sleep(2)
        await client.wake_up(["weights"])
        await client.reset_prefix_cache()
        await client.abort(["r1"])

    asyncio.run(main())
    for engine in engines:
        assert engine.calls == [("sleep", 2), ("wake_up", ["weights"]), ("reset_prefix_cache",), ("abort", ["r1"])]


# -- the real tiny model ------------------------------------------------------------------------------------------


def test_real_tiny_model_through_the_hf_engine(pm, tokenizer, tiny_model_path):
    from skyrl_core.inference.hf import HFEngine

    engine = HFEngine(model_path=str(tiny_model_path), dtype="float32", seed=0)
    # Every token is a stop token: each turn is one sampled token that ends by itself.
    stop_ids = list(range(len(tokenizer)))
    out = run(pm, tokenizer, engine, "t_observe", n=3, config=make_config(max_turns=2), stop_token_ids=stop_ids)
    encoder = make_generator(pm, tokenizer, engine).observations
    observation_ids = encoder.encode([{"role": "user", "content": "Try again."}], after_eos=False)
    for i in range(3):
        mask, logprobs = out.loss_masks[i], out.rollout_logprobs[i]
        assert out.num_turns[i] == 2 and sum(mask) == 2 and out.stop_reasons[i] == "stop"
        assert all(lp < 0 if m else lp == 0 for lp, m in zip(logprobs, mask))
        first_gap = mask.index(0)
        inserted = out.response_ids[i][first_gap : first_gap + mask.count(0)]
        assert inserted[-len(observation_ids) :] == observation_ids
        assert out.token_rewards[i][first_gap - 1] == 0.25 and out.rewards[i] == pytest.approx(1.25)



@pytest.mark.slow  # starts the session's local Ray (shared with the other Ray tests)
def test_engine_client_with_ray_actors(ray_local):
    class Tagger:  # defined here so that Ray ships it by value (workers cannot import test modules)
        def __init__(self, number):
            self.number = number

        async def generate(self, request):
            return GenerationResult(token_ids=[self.number, request.prompt_token_ids[0]], logprobs=[0.0, 0.0],
                                    stop_reason="stop")

    actor = ray_local.remote(num_cpus=0.01)(Tagger)
    client = EngineClient([actor.remote(n) for n in range(2)])
    requests = [GenerationRequest(prompt_token_ids=[i], session_id=f"s{i}") for i in range(6)]

    async def main():
        return await asyncio.gather(*(client.generate(r) for r in requests))

    results = asyncio.run(main())
    assert [r.token_ids for r in results] == [[client.engine_of_session(f"s{i}"), i] for i in range(6)]
