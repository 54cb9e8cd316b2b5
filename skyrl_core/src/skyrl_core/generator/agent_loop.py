"""The default generator: a multi-turn, token-in-token-out agent loop, batched turn by turn.

Per trajectory: build the env (``env_cls(env_config=<environment.<name> section>, extras=<row extras +
max_turns>)``), ``messages, info = env.init(prompt)``, then repeat

1. generate one turn from ``prompt_ids + response_ids`` (session id = the trajectory's index, so a conversation
   stays on one engine); every live trajectory's turn goes into ONE ``engine_client.generate`` call;
2. ``env.step(decoded turn text)`` (special tokens skipped), all trajectories' steps at once on the env thread pool;
3. finish when the env says ``done``, after ``generator.max_turns`` turns, when the turn did not stop by itself
   (``"length"``), or when the next turn's input would exceed the budget; otherwise append the observation tokens.

Token accounting (the trained tokens are exactly the sampled ones; the history is never re-tokenised):

- ``prompt_token_ids``: ``apply_chat_template(init messages, add_generation_prompt=True)``.
- ``response_ids``: everything after the prompt. Sampled tokens: loss mask 1, rollout log-prob from the engine.
  Inserted tokens (observations, template glue): loss mask 0, log-prob 0.0.
- Observation tokens come from a fixed base conversation ``B`` (system + user message):
  ``ids(B + observations, add_generation_prompt=True)[len(ids(B)):]``, i.e. the new messages plus the next
  generation prompt, rendered exactly as the template renders them after earlier messages. When the turn ended
  with EOS, the template's tokens that follow an end-of-message EOS (``"\\n"`` after ``<|im_end|>`` in ChatML; read
  from ``ids(B)`` after its last EOS) go first. Empty observations give just that tail plus the generation prompt.
- A turn that stopped on a stop string (not EOS) gets EOS + tail inserted before the observation when
  ``generator.append_eos_token_after_stop_str_in_multi_turn`` is set; the EOS has loss mask 0 because it was not
  sampled (no rollout log-prob, and training it would be off-policy).
- ``token_rewards``: each turn's reward on that turn's last sampled token; ``rewards`` is the trajectory's sum.

Length budget: ``max_input_length = generator.max_input_length or trainer.max_prompt_length`` limits every turn's
input (prompt + response so far); each turn generates at most ``sampling.max_tokens``
(``max_generate_length``). So ``len(prompt) + len(response) <= max_input_length + max_generate_length`` always
(the trainer's ``max_seq_len``). When the observation tokens would push the next input past ``max_input_length``,
the trajectory ends with stop reason ``"length"`` without them; a prompt already past it gets an empty response.

Failures: an env call that raises, returns a malformed value or times out (see
:mod:`skyrl_core.generator.env_runner`) ends its trajectory with stop reason ``"abort"`` and reward 0; the
other trajectories go on. ``env.close()`` is always called.

Post-processing, in the ``"train"`` phase only (eval reports the env's rewards unchanged):
``zero_reward_on_non_stop`` zeroes the rewards of trajectories whose stop reason is not ``"stop"``;
``apply_overlong_filtering`` zeroes the loss mask of trajectories whose stop reason is ``"length"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import attrs

from skyrl_core.config.loader import component_section
from skyrl_core.errors import UserError
from skyrl_core.generator.env_runner import (
    EnvCall,
    EnvFailure,
    EnvOutputError,
    EnvRunner,
    check_init_output,
    check_step_output,
    logger,
)
from skyrl_core.generator.types import Generator, GeneratorInput, GeneratorOutput
from skyrl_core.inference.base import GenerationRequest

#: The fixed conversation after which observation messages are rendered (as SkyRL does).
BASE_CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "I am a user."},
]


def chat_template_ids(tokenizer: Any, messages: list[dict[str, Any]], *, add_generation_prompt: bool) -> list[int]:
    """The token ids of ``messages`` rendered with the tokenizer's chat template."""
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=False
    )
    if isinstance(ids, Mapping):  # tokenizers that return a BatchEncoding regardless
        ids = ids["input_ids"]
    return list(ids)


class ObservationEncoder:
    """Token ids inserted between two turns, rendered after :data:`BASE_CONVERSATION` (see the module doc)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_id = tokenizer.eos_token_id
        self.base_ids = chat_template_ids(tokenizer, BASE_CONVERSATION, add_generation_prompt=False)
        eos_positions = [i for i, token in enumerate(self.base_ids) if token == self.eos_id]
        self.eos_tail = self.base_ids[eos_positions[-1] + 1 :] if eos_positions else []

    def encode(self, observations: list[dict[str, Any]], *, after_eos: bool) -> list[int]:
        """Tokens of ``observations`` plus the next generation prompt; the EOS tail first when ``after_eos``."""
        ids = chat_template_ids(self.tokenizer, BASE_CONVERSATION + observations, add_generation_prompt=True)
        if ids[: len(self.base_ids)] != self.base_ids:
            raise UserError(
                "the tokenizer's chat template renders a conversation differently once messages follow it, so "
                "observations cannot be appended as tokens (token-in-token-out); use a template that only appends"
            )
        return (self.eos_tail if after_eos else []) + ids[len(self.base_ids) :]


@attrs.define(eq=False)
class _Trajectory:
    """The state of one trajectory while the batch runs."""

    index: int
    env_class: str
    env: Any = None
    prompt_ids: list[int] = attrs.field(factory=list)
    response_ids: list[int] = attrs.field(factory=list)
    loss_mask: list[int] = attrs.field(factory=list)
    logprobs: list[float] = attrs.field(factory=list)
    token_rewards: list[float] = attrs.field(factory=list)
    reward: float = 0.0
    turns: int = 0
    stop_reason: str | None = None  # set once the trajectory is finished
    failed: bool = False  # an env call failed

    def add(self, ids: list[int], *, sampled: bool, logprobs: list[float] | None = None) -> None:
        self.response_ids += ids
        self.loss_mask += [int(sampled)] * len(ids)
        self.logprobs += list(logprobs) if logprobs is not None else [0.0] * len(ids)
        self.token_rewards += [0.0] * len(ids)

    def add_reward(self, reward: float) -> None:
        """Put ``reward`` on the last response token (the turn's last sampled token, right after it is added)."""
        self.reward += reward
        if self.token_rewards:
            self.token_rewards[-1] += reward

    def zero_reward(self) -> None:
        self.reward = 0.0
        self.token_rewards = [0.0] * len(self.token_rewards)

    def fail(self) -> None:
        self.zero_reward()
        self.failed = True
        self.stop_reason = "abort"


class AgentLoopGenerator(Generator):
    """The default multi-turn token-in-token-out agent loop (registered as generator ``"default"``)."""

    def __init__(self, *, config: Any, tokenizer: Any, engine_client: Any, plugin_manager: Any) -> None:
        super().__init__(config=config, tokenizer=tokenizer, engine_client=engine_client, plugin_manager=plugin_manager)
        gen = config.generator
        if gen.max_turns < 1:
            raise UserError(f"generator.max_turns must be >= 1, got {gen.max_turns}")
        if gen.max_turns > 1 and not gen.use_conversation_multi_turn:
            raise UserError("generator.use_conversation_multi_turn=false is not supported by the default generator")
        self.max_input_length = gen.max_input_length or config.trainer.max_prompt_length
        self.observations = ObservationEncoder(tokenizer)
        #: Called as ``on_progress(finished, total)`` before every turn and at the end (the trainer's progress bar).
        self.on_progress: Callable[[int, int], None] | None = None

    def generate(self, batch: GeneratorInput) -> GeneratorOutput:
        if batch.sampling.max_tokens < 1:
            raise UserError(f"max_generate_length must be >= 1, got {batch.sampling.max_tokens}")
        trajectories = [_Trajectory(i, self._env_class(i, name)) for i, name in enumerate(batch.env_classes)]
        registry = self.plugin_manager.registry("environments")
        classes = {name: registry[name] for name in sorted({t.env_class for t in trajectories})}
        env_cfg = self.config.environment
        with EnvRunner(max_workers=env_cfg.max_env_workers, timeout_s=env_cfg.step_timeout_s) as runner:
            try:
                self._start(batch, trajectories, classes, runner)
                self._run_turns(batch, trajectories, runner)
                metrics = self._env_metrics(trajectories, classes, runner)
            finally:
                runner.close_all(
                    [EnvCall(t.env_class, "close", t.env.close) for t in trajectories if t.env is not None]
                )
        if self.on_progress is not None:
            self.on_progress(len(trajectories), len(trajectories))
        if batch.phase == "train":
            self._post_process(trajectories)
        return GeneratorOutput(
            prompt_token_ids=[t.prompt_ids for t in trajectories],
            response_ids=[t.response_ids for t in trajectories],
            loss_masks=[t.loss_mask for t in trajectories],
            token_rewards=[t.token_rewards for t in trajectories],
            rollout_logprobs=[t.logprobs for t in trajectories],
            stop_reasons=[t.stop_reason for t in trajectories],
            rewards=[t.reward for t in trajectories],
            env_classes=[t.env_class for t in trajectories],
            env_metrics=metrics,
            num_env_errors=runner.num_errors,
            num_env_timeouts=runner.num_timeouts,
            num_turns=[t.turns for t in trajectories],
        )

    # -- phases of a batch --------------------------------------------------------------------------------------

    def _env_class(self, index: int, name: str | None) -> str:
        name = name or self.config.environment.env_class
        if not name:
            raise UserError(f"trajectory {index} has no env_class and environment.env_class is not set")
        return name

    def _start(
        self, batch: GeneratorInput, trajectories: list[_Trajectory], classes: dict[str, type], runner: EnvRunner
    ) -> None:
        """Construct and ``init`` every env; tokenise the prompts (the dataset's prompt when the env failed)."""
        sections = {
            name: component_section(self.config.environment, name, "environments", self.plugin_manager)
            for name in classes
        }
        calls = []
        for t, extras in zip(trajectories, batch.env_extras):
            extras = {**(extras or {}), "max_turns": self.config.generator.max_turns}
            make = partial(classes[t.env_class], env_config=sections[t.env_class], extras=extras)
            calls.append(EnvCall(t.env_class, "constructor", make))
        for t, env in zip(trajectories, runner.run(calls)):
            if isinstance(env, EnvFailure):
                t.fail()
            else:
                t.env = env
        live = [t for t in trajectories if t.env is not None]
        prompts = {t.index: [dict(m) for m in batch.prompts[t.index]] for t in live}
        inits = runner.run([EnvCall(t.env_class, "init", partial(_init, t, prompts[t.index])) for t in live])
        messages = list(batch.prompts)
        for t, init in zip(live, inits):
            if isinstance(init, EnvFailure):
                t.fail()
            else:
                messages[t.index] = init[0]
        for t in trajectories:
            t.prompt_ids = chat_template_ids(self.tokenizer, messages[t.index], add_generation_prompt=True)
            if t.stop_reason is None and len(t.prompt_ids) > self.max_input_length:
                t.stop_reason = "length"

    def _run_turns(self, batch: GeneratorInput, trajectories: list[_Trajectory], runner: EnvRunner) -> None:
        """Generate turn by turn until every trajectory is finished."""
        warned = False
        while live := [t for t in trajectories if t.stop_reason is None]:
            if self.on_progress is not None:
                self.on_progress(len(trajectories) - len(live), len(trajectories))
            requests = [
                GenerationRequest(
                    prompt_token_ids=t.prompt_ids + t.response_ids, sampling=batch.sampling, session_id=str(t.index)
                )
                for t in live
            ]
            results = self.engine_client.generate(requests)
            actions = []
            for t, result in zip(live, results):
                if len(result.logprobs) != len(result.token_ids):
                    raise RuntimeError(
                        f"inference engine returned {len(result.logprobs)} logprobs for {len(result.token_ids)} tokens"
                    )
                t.add(list(result.token_ids), sampled=True, logprobs=result.logprobs)
                t.turns += 1
                actions.append(self.tokenizer.decode(result.token_ids, skip_special_tokens=True))
            steps = runner.run(
                [EnvCall(t.env_class, "step", partial(_step, t, action)) for t, action in zip(live, actions)]
            )
            for t, result, action, out in zip(live, results, actions, steps):
                if isinstance(out, EnvFailure):
                    t.fail()
                    continue
                t.add_reward(out.reward)
                if out.postprocessed_action is not None and not warned:
                    warned = True
                    logger.warning(
                        "env '%s' returned a postprocessed_action; it is ignored because the conversation is kept "
                        "as the sampled tokens (token-in-token-out). Logged once per batch.",
                        t.env_class,
                    )
                if out.done or t.turns >= self.config.generator.max_turns or result.stop_reason != "stop":
                    t.stop_reason = result.stop_reason
                else:
                    self._append_observations(t, result.token_ids, action, out.observations, batch)

    def _append_observations(
        self, t: _Trajectory, generated: list[int], action: str, observations: list[dict], batch: GeneratorInput
    ) -> None:
        """Insert the tokens that close the turn and open the next one (loss mask 0), or end on the budget."""
        eos = self.observations.eos_id
        ended_with_eos = bool(generated) and generated[-1] == eos
        inserted: list[int] = []
        stop_strings = batch.sampling.stop or []
        if (
            not ended_with_eos
            and self.config.generator.append_eos_token_after_stop_str_in_multi_turn
            and any(stop in action for stop in stop_strings)
        ):
            inserted, ended_with_eos = [eos], True
        inserted += self.observations.encode(observations, after_eos=ended_with_eos)
        if len(t.prompt_ids) + len(t.response_ids) + len(inserted) > self.max_input_length:
            t.stop_reason = "length"
        else:
            t.add(inserted, sampled=False)

    def _env_metrics(
        self, trajectories: list[_Trajectory], classes: dict[str, type], runner: EnvRunner
    ) -> dict[str, float]:
        """``get_metrics`` of every successful episode, aggregated per env class."""
        done = [t for t in trajectories if not t.failed]
        results = runner.run([EnvCall(t.env_class, "get_metrics", partial(_get_metrics, t)) for t in done])
        per_class: dict[str, list[dict[str, Any]]] = {}
        for t, metrics in zip(done, results):
            if isinstance(metrics, EnvFailure):
                t.fail()
            else:
                per_class.setdefault(t.env_class, []).append(metrics)
        out: dict[str, float] = {}
        for name, episodes in sorted(per_class.items()):
            try:
                aggregated = classes[name].aggregate_metrics(episodes)
            except Exception:  # noqa: BLE001 - a bad aggregate loses the metrics, not the step
                logger.warning("env '%s': aggregate_metrics failed; its metrics are dropped", name, exc_info=True)
                continue
            for key, value in aggregated.items():
                if isinstance(value, (int, float)):
                    out[f"environment/{name}/{key}"] = float(value)
        return out

    def _post_process(self, trajectories: list[_Trajectory]) -> None:
        gen = self.config.generator
        for t in trajectories:
            if gen.zero_reward_on_non_stop and t.stop_reason != "stop":
                t.zero_reward()
            if gen.apply_overlong_filtering and t.stop_reason == "length":
                t.loss_mask = [0] * len(t.loss_mask)


# -- env calls, run on the env thread pool ------------------------------------------------------------------------


def _init(t: _Trajectory, prompt: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return check_init_output(t.env.init(prompt), t.env_class)


def _step(t: _Trajectory, action: str) -> Any:
    return check_step_output(t.env.step(action), t.env_class)


def _get_metrics(t: _Trajectory) -> dict[str, Any]:
    metrics = t.env.get_metrics()
    if not isinstance(metrics, Mapping):
        raise EnvOutputError(f"env '{t.env_class}': get_metrics() must return a dict, got {type(metrics).__name__}")
    return dict(metrics)
