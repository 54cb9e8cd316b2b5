"""The default generator: a multi-turn, token-in-token-out agent loop, one coroutine per trajectory.

Per trajectory, in its own coroutine (all of a batch's run together with ``asyncio.gather``): build the env
(``env_cls(env_config=<environment.<name> section>, extras=<row extras + max_turns>)``),
``messages, info = env.init(prompt)``, then repeat

1. ``await engine_client.generate(...)`` one turn from ``prompt_ids + response_ids`` (session id unique to the
   trajectory, so a conversation stays on one engine); the engines batch the concurrent requests themselves;
2. ``env.step(decoded turn text)`` (special tokens skipped) on an env thread
   (:mod:`skyrl_core.generator.env_runner`);
3. finish when the env says ``done``, after ``generator.max_turns`` turns, when the turn did not stop by itself
   (``"length"``), or when the next turn's input would exceed the budget; otherwise append the observation tokens.

So a slow env step or a long generation delays only its own trajectory: the others keep generating and stepping.
Then ``env.get_metrics()`` (unless the trajectory failed) and ``env.close()`` (always). With ``generator.batched``
(single-turn only: ``max_turns`` must be 1) the phases are instead run batch-wide: every env is built and
initialised, then every prompt's request is sent at once, then every env steps.

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

Progress: ``on_progress(finished, total)``, when set (the trainer's progress bar sets it), is called at the start,
whenever a trajectory finishes, and at the end. :meth:`Generator.generate` runs the loop from synchronous code.

Post-processing, in the ``"train"`` phase only (eval reports the env's rewards unchanged):
``zero_reward_on_non_stop`` zeroes the rewards of trajectories whose stop reason is not ``"stop"``;
``apply_overlong_filtering`` zeroes the loss mask of trajectories whose stop reason is ``"length"``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs

from skyrl_core.config.loader import component_section
from skyrl_core.errors import UserError
from skyrl_core.generator.env_runner import EnvCall, EnvFailure, EnvRunner, logger
from skyrl_core.generator.trajectory import (
    ObservationEncoder,
    Trajectory,
    chat_template_ids,
    env_init,
    env_metrics,
    env_step,
)
from skyrl_core.generator.types import Generator, GeneratorInput, GeneratorOutput, request_seed
from skyrl_core.inference.base import GenerationRequest, GenerationResult


@attrs.define(eq=False)
class _Batch:
    """What every trajectory coroutine of one batch shares."""

    input: GeneratorInput
    classes: dict[str, type]
    sections: dict[str, Any]
    runner: EnvRunner
    uid: str
    finished: int = 0
    warned: bool = False  # postprocessed_action ignored (logged once per batch)


class AgentLoopGenerator(Generator):
    """The default multi-turn token-in-token-out agent loop (registered as generator ``"default"``)."""

    def __init__(self, *, config: Any = None, run_config: Any, tokenizer: Any, engine_client: Any,
                 plugin_manager: Any) -> None:
        super().__init__(config=config, run_config=run_config, tokenizer=tokenizer, engine_client=engine_client,
                         plugin_manager=plugin_manager)
        gen = run_config.generator
        if gen.max_turns < 1:
            raise UserError(f"generator.max_turns must be >= 1, got {gen.max_turns}")
        if gen.max_turns > 1 and not gen.use_conversation_multi_turn:
            raise UserError("generator.use_conversation_multi_turn=false is not supported by the default generator")
        if gen.batched and gen.max_turns != 1:
            raise UserError(f"generator.batched=true is single-turn: set generator.max_turns=1 (got {gen.max_turns}) "
                            "or generator.batched=false")
        self.max_input_length = gen.max_input_length or run_config.trainer.max_prompt_length
        self.observations = ObservationEncoder(tokenizer)
        #: Called as ``on_progress(finished, total)`` (the trainer's progress bar); see the module doc.
        self.on_progress: Callable[[int, int], None] | None = None

    async def generate_async(self, batch: GeneratorInput) -> GeneratorOutput:
        if batch.sampling.max_tokens < 1:
            raise UserError(f"max_generate_length must be >= 1, got {batch.sampling.max_tokens}")
        trajectories = [Trajectory(i, self._env_class(i, name)) for i, name in enumerate(batch.env_classes)]
        registry = self.plugin_manager.registry("environments")
        classes = {name: registry[name] for name in sorted({t.env_class for t in trajectories})}
        env_cfg = self.run_config.environment
        sections = {name: component_section(env_cfg, name, "environments", self.plugin_manager) for name in classes}
        run = _Batch(input=batch, classes=classes, sections=sections, uid=uuid.uuid4().hex[:12],
                     runner=EnvRunner(max_workers=env_cfg.max_env_workers, timeout_s=env_cfg.step_timeout_s))
        self._report(0, len(trajectories))
        if self.run_config.generator.batched:
            await self._run_batched(run, trajectories)
        else:
            await asyncio.gather(*(self._run_trajectory(run, t, len(trajectories)) for t in trajectories))
        self._report(len(trajectories), len(trajectories))
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
            env_metrics=self._aggregate_metrics(trajectories, classes),
            num_env_errors=run.runner.num_errors,
            num_env_timeouts=run.runner.num_timeouts,
            num_turns=[t.turns for t in trajectories],
        )

    # -- one trajectory -----------------------------------------------------------------------------------------

    async def _run_trajectory(self, run: _Batch, t: Trajectory, total: int) -> None:
        """Start, then turn after turn until finished; then metrics and ``close``."""
        try:
            await self._start(run, t)
            while t.stop_reason is None:
                result = await self._generate_turn(run, t)
                await self._step(run, t, result)
            await self._collect_metrics(run, t)
        finally:
            await self._close(run, t)
        run.finished += 1
        self._report(run.finished, total)

    async def _run_batched(self, run: _Batch, trajectories: list[Trajectory]) -> None:
        """``generator.batched``: each phase for the whole batch before the next (single turn)."""
        try:
            await asyncio.gather(*(self._start(run, t) for t in trajectories))
            live = [t for t in trajectories if t.stop_reason is None]
            results = await asyncio.gather(*(self._generate_turn(run, t) for t in live))
            await asyncio.gather(*(self._step(run, t, result) for t, result in zip(live, results)))
            await asyncio.gather(*(self._collect_metrics(run, t) for t in trajectories))
        finally:
            await asyncio.gather(*(self._close(run, t) for t in trajectories))

    def _env_class(self, index: int, name: str | None) -> str:
        name = name or self.run_config.environment.env_class
        if not name:
            raise UserError(f"trajectory {index} has no env_class and environment.env_class is not set")
        return name

    async def _start(self, run: _Batch, t: Trajectory) -> None:
        """Construct and ``init`` the env; tokenise the prompt (the dataset's prompt when the env failed)."""
        extras = {**(run.input.env_extras[t.index] or {}), "max_turns": self.run_config.generator.max_turns}
        make = partial(run.classes[t.env_class], env_config=run.sections[t.env_class], extras=extras)
        messages = run.input.prompts[t.index]
        env = await run.runner.call(EnvCall(t.env_class, "constructor", make))
        if isinstance(env, EnvFailure):
            t.fail()
        else:
            t.env = env
            prompt = [dict(m) for m in messages]
            init = await run.runner.call(EnvCall(t.env_class, "init", partial(env_init, t, prompt)))
            if isinstance(init, EnvFailure):
                t.fail()
            else:
                messages = init[0]
        t.prompt_ids = chat_template_ids(self.tokenizer, messages, add_generation_prompt=True)
        if t.stop_reason is None and len(t.prompt_ids) > self.max_input_length:
            t.stop_reason = "length"

    async def _generate_turn(self, run: _Batch, t: Trajectory) -> GenerationResult:
        """One turn from the engines; its sampled tokens are appended (loss mask 1)."""
        request = GenerationRequest(
            prompt_token_ids=t.prompt_ids + t.response_ids, sampling=run.input.sampling,
            session_id=f"{run.uid}-{t.index}", request_id=f"{run.uid}-{t.index}-{t.turns}",
            seed=None if run.input.seed is None else request_seed(run.input.seed, t.index, t.turns),
        )
        result = await self.engine_client.generate(request)
        if len(result.logprobs) != len(result.token_ids):
            raise RuntimeError(
                f"inference engine returned {len(result.logprobs)} logprobs for {len(result.token_ids)} tokens"
            )
        t.add(list(result.token_ids), sampled=True, logprobs=result.logprobs)
        t.turns += 1
        return result

    async def _step(self, run: _Batch, t: Trajectory, result: GenerationResult) -> None:
        """``env.step`` on the turn's text: reward, then finish or append the observation tokens."""
        action = self.tokenizer.decode(result.token_ids, skip_special_tokens=True)
        out = await run.runner.call(EnvCall(t.env_class, "step", partial(env_step, t, action)))
        if isinstance(out, EnvFailure):
            t.fail()
            return
        t.add_reward(out.reward)
        if out.postprocessed_action is not None and not run.warned:
            run.warned = True
            logger.warning(
                "env '%s' returned a postprocessed_action; it is ignored because the conversation is kept as the "
                "sampled tokens (token-in-token-out). Logged once per batch.",
                t.env_class,
            )
        if out.done or t.turns >= self.run_config.generator.max_turns or result.stop_reason != "stop":
            t.stop_reason = result.stop_reason
        else:
            self._append_observations(t, result.token_ids, action, out.observations, run.input)

    def _append_observations(
        self, t: Trajectory, generated: list[int], action: str, observations: list[dict], batch: GeneratorInput
    ) -> None:
        """Insert the tokens that close the turn and open the next one (loss mask 0), or end on the budget."""
        eos = self.observations.eos_id
        ended_with_eos = bool(generated) and generated[-1] == eos
        inserted: list[int] = []
        stop_strings = batch.sampling.stop or []
        if (
            not ended_with_eos
            and self.run_config.generator.append_eos_token_after_stop_str_in_multi_turn
            and any(stop in action for stop in stop_strings)
        ):
            inserted, ended_with_eos = [eos], True
        inserted += self.observations.encode(observations, after_eos=ended_with_eos)
        if len(t.prompt_ids) + len(t.response_ids) + len(inserted) > self.max_input_length:
            t.stop_reason = "length"
        else:
            t.add(inserted, sampled=False)

    async def _collect_metrics(self, run: _Batch, t: Trajectory) -> None:
        if t.failed:
            return
        metrics = await run.runner.call(EnvCall(t.env_class, "get_metrics", partial(env_metrics, t)))
        if isinstance(metrics, EnvFailure):
            t.fail()
        else:
            t.metrics = metrics

    async def _close(self, run: _Batch, t: Trajectory) -> None:
        if t.env is not None:
            await run.runner.close(EnvCall(t.env_class, "close", t.env.close))

    # -- the batch ----------------------------------------------------------------------------------------------

    def _report(self, finished: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(finished, total)

    def _aggregate_metrics(self, trajectories: list[Trajectory], classes: dict[str, type]) -> dict[str, float]:
        """``get_metrics`` of every successful episode, aggregated per env class."""
        per_class: dict[str, list[dict[str, Any]]] = {}
        for t in trajectories:
            if t.metrics is not None and not t.failed:
                per_class.setdefault(t.env_class, []).append(t.metrics)
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

    def _post_process(self, trajectories: list[Trajectory]) -> None:
        gen = self.run_config.generator
        for t in trajectories:
            if gen.zero_reward_on_non_stop and t.stop_reason != "stop":
                t.zero_reward()
            if gen.apply_overlong_filtering and t.stop_reason == "length":
                t.loss_mask = [0] * len(t.loss_mask)
