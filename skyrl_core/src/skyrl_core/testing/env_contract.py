"""``EnvContract``: inherited pytest tests that check an environment plugin against what skyrl expects of it.

A plugin's test module subclasses :class:`EnvContract`, sets ``env_name`` (the registered name) and ``samples``
(dataset rows with a known right and wrong answer, as :class:`EnvSample`; see ``docs/plugins/writing-plugins.md``),
and inherits ``test_*`` methods for registration through entry points, construction from a dataset row, the
output types of ``init`` and ``step``, the rewards of the right and wrong answers, metrics aggregation and
``close()``. Outputs are checked with the same functions the generator uses
(:func:`~skyrl_core.generator.env_runner.check_step_output`, :func:`~skyrl_core.generator.env_runner.check_init_output`)
and rows with the dataset reader's row check, so what passes here is what a training run accepts.

An episode is what the generator does for one trajectory: ``env_cls(env_config=..., extras=<row minus prompt and
env_class, plus max_turns>)``, ``init(prompt)``, then ONE ``step(action)``. For a multi-turn env, ``right`` and
``wrong`` are the action of the first turn and the rewards are those of the first step.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, NoReturn

import attrs
import pytest

from skyrl_core.data.reader import PromptRow, _check_row, _RowProblem  # the reader's own row check
from skyrl_core.env.base import BaseTextEnv, BaseTextEnvStepOutput
from skyrl_core.generator.env_runner import EnvOutputError, check_init_output, check_step_output
from skyrl_core.plugins import PluginManager, set_plugin_manager

__all__ = ["EnvContract", "EnvSample"]

_REGISTER_FIX = (
    "declare the plugin module under [project.entry-points.skyrl] in the package's pyproject.toml "
    "(e.g. `{name} = \"my_package.plugin\"`), register the env there with "
    "`@hookimpl def register_environments(register): register(\"{name}\", MyEnv)`, and reinstall the package "
    "(`pip install -e .`) so the entry point is in the installed metadata"
)
_STEP_FIX = (
    "return BaseTextEnvStepOutput(observations=[...], reward=<float>, done=<bool>) from step(): reward a finite "
    "float such as 1.0 (not a string, bool or NaN), done True or False, observations a list of "
    "{'role': str, 'content': str} messages ([] for a single-turn env)"
)


@attrs.frozen
class EnvSample:
    """One dataset row with a right and a wrong answer, and the reward each must get.

    :param row: a dataset row as in a data file: ``prompt``, ``env_class``, ``reward_spec``, ``extra_info``, ...
    :param right: the model's text for the first turn that must get ``right_reward``.
    :param wrong: the model's text for the first turn that must get ``wrong_reward``.
    :param max_turns: passed to the env in ``extras["max_turns"]`` (``generator.max_turns`` in a run).
    """

    row: dict = attrs.field(validator=attrs.validators.instance_of(dict))
    right: str = attrs.field(validator=attrs.validators.instance_of(str))
    wrong: str = attrs.field(validator=attrs.validators.instance_of(str))
    right_reward: float = 1.0
    wrong_reward: float = 0.0
    max_turns: int = 1


@attrs.frozen
class _Episode:
    index: int
    sample: EnvSample
    where: str
    env: Any
    output: BaseTextEnvStepOutput


class EnvContract:
    """Base class of an env plugin's contract tests; subclass it in a test module named ``Test...``.

    Class attributes to set: ``env_name`` (the registered name), ``samples`` (a list of :class:`EnvSample`) and
    optionally ``env_config`` (an instance of the env's config class; default: the registered ``config_cls()``,
    or ``None`` when the env registered none). Override :meth:`load_env_class` to test a class that is not
    installed (its registration test then fails; deselect it with ``-k "not registered"``)::

        class TestMyEnvContract(EnvContract):
            env_name = "myenv"
            samples = [EnvSample(row=make_row(2, 3), right="\\\\boxed{6}", wrong="\\\\boxed{7}")]
    """

    __test__ = False  # the base itself is not a test class; every subclass is (see __init_subclass__)

    env_name: ClassVar[str] = ""
    env_config: ClassVar[Any] = None
    samples: ClassVar[list[EnvSample]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:  # an intermediate base may set __test__ = False itself
            cls.__test__ = True

    def load_env_class(self, plugin_manager: PluginManager) -> type:
        """The env class under test; default: ``env_name`` looked up in the environments registry."""
        registry = plugin_manager.registry("environments")
        if self.env_name not in registry:
            self._fail(str(registry.unknown(self.env_name)), _REGISTER_FIX.format(name=self.env_name or "myenv"))
        return registry[self.env_name]

    @pytest.fixture(autouse=True)
    def _skyrl_env_contract_setup(self, request: pytest.FixtureRequest) -> Iterator[None]:
        """A fresh plugin manager per test, also the process-wide one while the test runs."""
        manager = PluginManager()  # a broken plugin fails here under SKYRL_STRICT_PLUGINS=1, with its fix
        previous = set_plugin_manager(manager)
        request.instance._plugin_manager = manager
        try:
            yield
        finally:
            set_plugin_manager(previous)

    def _name(self) -> str:
        return self.env_name or type(self).__name__

    def _env_class(self) -> type:
        env_cls = self.load_env_class(self._plugin_manager)
        if not (isinstance(env_cls, type) and issubclass(env_cls, BaseTextEnv)):
            what = f"an instance of {type(env_cls).__name__}" if not isinstance(env_cls, type) else repr(env_cls)
            self._fail(f"env '{self._name()}' is registered as {what}, not a BaseTextEnv subclass",
                       "subclass skyrl_core.BaseTextEnv and register the class itself (register(\"name\", MyEnv), "
                       "not MyEnv())")
        return env_cls

    def _config(self) -> Any:
        if self.env_config is not None:
            return self.env_config
        registry = self._plugin_manager.registry("environments")
        config_cls = registry.entry(self.env_name).config_cls if self.env_name in registry else None
        return config_cls() if config_cls is not None else None

    def _samples(self) -> list[EnvSample]:
        if not self.samples:
            pytest.skip("no samples given (see test_samples_are_given)")
        return list(self.samples)

    def _fail(self, message: str, fix: str, exc: BaseException | None = None) -> NoReturn:
        """Fail the test with ``message``, the fix and, for an unexpected error, its traceback in the env's code."""
        text = f"{message}\nTroubleshooting: {fix}"
        if exc is not None and not isinstance(exc, EnvOutputError):
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
            lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
            text += "\n\nThe error was raised here:\n" + "".join(lines).rstrip()
        pytest.fail(text, pytrace=False)

    def _call(self, what: str, where: str, fn: Callable[[], Any], fix: str, raised_fix: str | None = None) -> Any:
        """``fn()``; an exception becomes a test failure naming the env, the call and the sample."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - any env error is reported the same way
            error = exc  # reported outside the except block, so pytest shows no chained exception
        if isinstance(error, EnvOutputError):
            self._fail(f"{error} on {where}", fix, error)
        self._fail(f"env '{self._name()}' {what} raised {type(error).__name__}: {error} on {where}",
                   raised_fix or f"fix the error below; {fix}", error)

    def _construct(self, env_cls: type, index: int, sample: EnvSample) -> tuple[Any, PromptRow]:
        """The env built from ``sample.row`` exactly as the generator does, and the row as the reader reads it."""
        where = f"sample {index}"
        env_class = sample.row.get("env_class", self.env_name)
        if env_class != self.env_name:
            self._fail(f"{where}: the row's env_class is {env_class!r}, but env_name is {self.env_name!r}",
                       f"set the row's env_class to {self.env_name!r} (the registered name)")
        problem = None
        try:
            row = _check_row(sample.row, index, self.env_name, [self.env_name])
        except _RowProblem as exc:
            problem = f"column {exc.column!r}: {exc.message}"
        if problem is not None:
            self._fail(f"{where}: the row is not a valid dataset row: {problem}", "fix the sample row (the format "
                       "is in docs/datasets.md); the same check rejects such rows in a training file")
        extras = {**row.extras, "max_turns": sample.max_turns}
        config = self._config()
        env = self._call("constructor", where, lambda: env_cls(env_config=config, extras=extras),
                         "the constructor must accept (env_config=None, extras=None) and call "
                         "super().__init__(env_config, extras); env_config is an instance of the registered "
                         "config_cls (set the contract's env_config to test another)")
        return env, row

    def _episode(self, env_cls: type, index: int, sample: EnvSample, answer: str) -> _Episode:
        """Construct, ``init`` and ``step`` once with the ``"right"`` or ``"wrong"`` action."""
        env, row = self._construct(env_cls, index, sample)
        try:
            return self._run(env, row, index, sample, answer)
        except BaseException:
            self._close_quietly(env)
            raise

    def _run(self, env: Any, row: PromptRow, index: int, sample: EnvSample, answer: str) -> _Episode:
        where = f"sample {index} ({answer} answer)"
        prompt = [dict(m) for m in row.prompt]
        self._call("init()", where, lambda: check_init_output(env.init(prompt), self._name()),
                   "init(prompt) must return (messages, info): the conversation as a list of "
                   "{'role': str, 'content': str} dicts (by default the prompt unchanged) and a dict")
        action = sample.right if answer == "right" else sample.wrong
        raw = self._call("step()", where, lambda: env.step(action), _STEP_FIX,
                         "step() must not raise on any text the model may produce: fix the error below, and give "
                         "an answer it cannot parse the wrong-answer reward (e.g. 0.0)")
        output = self._call("step()", where, lambda: check_step_output(raw, self._name()), _STEP_FIX)
        done = raw.get("done") if isinstance(raw, (Mapping, BaseTextEnvStepOutput)) else None
        if not (isinstance(done, bool) or type(done).__name__ == "bool_"):  # NumPy bools pass too
            self._fail(f"env '{self._name()}': step() done must be a bool, got {done!r} on {where}", _STEP_FIX)
        return _Episode(index, sample, where, env, output)

    def _episodes(self, answer: str) -> list[_Episode]:
        """One episode per sample with the ``answer`` action; close them with :meth:`_close_quietly`."""
        env_cls = self._env_class()
        done: list[_Episode] = []
        try:
            for index, sample in enumerate(self._samples()):
                done.append(self._episode(env_cls, index, sample, answer))
        except BaseException:
            self._close_quietly(*done)
            raise
        return done

    @staticmethod
    def _close_quietly(*envs: Any) -> None:
        """Close envs (or episodes' envs) after a test; ``close`` errors are the business of ``test_close_is_safe``."""
        for env in envs:
            try:
                (env.env if isinstance(env, _Episode) else env).close()
            except Exception:  # noqa: BLE001
                pass

    def test_samples_are_given(self) -> None:
        """The contract has at least one :class:`EnvSample`.

        Troubleshooting: set ``samples = [EnvSample(row={...}, right="...", wrong="...")]`` on the test class, with
        a dataset row of your env and a right and a wrong answer for it.
        """
        fix = ("set samples = [EnvSample(row={'prompt': [...], 'env_class': ..., 'reward_spec': {'ground_truth': "
               "...}}, right='<a right answer>', wrong='<a wrong answer>')] on the test class")
        if not self.samples:
            self._fail(f"{type(self).__name__}.samples is empty: the contract needs at least one sample row", fix)
        for index, sample in enumerate(self.samples):
            if not isinstance(sample, EnvSample):
                self._fail(f"samples[{index}] is a {type(sample).__name__}, not an EnvSample", fix)
        if not self.env_name:
            self._fail(f"{type(self).__name__}.env_name is not set", "set env_name to the env's registered name")

    def test_registered_through_entry_points(self) -> None:
        """``env_name`` is registered by an installed distribution through an entry point of group ``skyrl``.

        Troubleshooting: add the plugin module under ``[project.entry-points.skyrl]`` in ``pyproject.toml``, call
        ``register(env_name, MyEnv)`` in its ``register_environments`` hook, and reinstall (``pip install -e .``).
        """
        registry = self._plugin_manager.registry("environments")
        if self.env_name not in registry:
            self._fail(str(registry.unknown(self.env_name)), _REGISTER_FIX.format(name=self.env_name or "myenv"))
        plugin = registry.entry(self.env_name).plugin
        if plugin.builtin or not plugin.entry_point.startswith("skyrl:"):
            self._fail(f"env '{self.env_name}' is registered by {plugin.label()} ({plugin.entry_point}), not through "
                       "an installed distribution's entry point", _REGISTER_FIX.format(name=self.env_name))

    def test_is_a_base_text_env(self) -> None:
        """The registered object is a subclass of ``skyrl_core.BaseTextEnv``.

        Troubleshooting: subclass ``BaseTextEnv`` and register the class, not an instance of it.
        """
        assert issubclass(self._env_class(), BaseTextEnv)

    def test_constructs_from_dataset_row(self) -> None:
        """Every sample row builds the env as the generator does; ``ground_truth`` comes from ``reward_spec``.

        Troubleshooting: the constructor takes ``(env_config=None, extras=None)`` and must call
        ``super().__init__(env_config, extras)``, which sets ``ground_truth``, ``extras`` and ``max_turns``.
        """
        env_cls = self._env_class()
        fix = "call super().__init__(env_config, extras) in __init__ (it sets ground_truth, extras and max_turns)"
        for index, sample in enumerate(self._samples()):
            env, row = self._construct(env_cls, index, sample)
            self._close_quietly(env)
            if not isinstance(env, BaseTextEnv):
                self._fail(f"sample {index}: constructing env '{self._name()}' gave a {type(env).__name__}", fix)
            spec = row.extras.get("reward_spec") or {}
            got = getattr(env, "ground_truth", "<unset>")
            if "ground_truth" in spec and got != spec["ground_truth"]:
                self._fail(f"sample {index}: env.ground_truth is {got!r}, expected reward_spec.ground_truth "
                           f"{spec['ground_truth']!r}", fix)

    def test_init_returns_conversation(self) -> None:
        """``init(prompt)`` returns ``(messages, info)``: a non-empty list of role/content messages and a dict.

        Troubleshooting: return ``prompt, {}`` (the default) or your own conversation and an info dict.
        """
        env_cls = self._env_class()
        fix = "init(prompt) must return (messages, info): a non-empty list of {'role': str, 'content': str} and a dict"
        for index, sample in enumerate(self._samples()):
            env, row = self._construct(env_cls, index, sample)
            prompt = [dict(m) for m in row.prompt]
            try:
                raw = self._call("init()", f"sample {index}", lambda: env.init(prompt), fix)  # noqa: B023
            finally:
                self._close_quietly(env)
            messages, _ = self._call("init()", f"sample {index}",
                                     lambda: check_init_output(raw, self._name()), fix)  # noqa: B023
            if not messages:
                self._fail(f"env '{self._name()}': init() returned no messages on sample {index}", fix)
            if not isinstance(raw[1], Mapping):
                self._fail(f"env '{self._name()}': init() info must be a dict, got {type(raw[1]).__name__} "
                           f"on sample {index}", fix)

    def test_step_output_types(self) -> None:
        """``step()`` returns observations (messages), a finite real reward (not a bool) and a bool ``done``.

        Troubleshooting: return ``BaseTextEnvStepOutput(observations=[], reward=float(...), done=True)``.
        """
        for answer in ("right", "wrong"):
            self._close_quietly(*self._episodes(answer))

    def test_right_answer_reward(self) -> None:
        """``step(right)`` gets ``right_reward``.

        Troubleshooting: make ``step`` parse the answer format used in ``right`` and compare it with
        ``self.ground_truth``; or correct the sample's ``right``/``right_reward``.
        """
        self._check_rewards("right")

    def test_wrong_answer_reward(self) -> None:
        """``step(wrong)`` gets ``wrong_reward``.

        Troubleshooting: a wrong answer must not match ``self.ground_truth``; check the parsing in ``step`` or
        correct the sample's ``wrong``/``wrong_reward``.
        """
        self._check_rewards("wrong")

    def _check_rewards(self, answer: str) -> None:
        episodes = self._episodes(answer)
        try:
            self._compare_rewards(answer, episodes)
        finally:
            self._close_quietly(*episodes)

    def _compare_rewards(self, answer: str, episodes: list[_Episode]) -> None:
        for e in episodes:
            expected = e.sample.right_reward if answer == "right" else e.sample.wrong_reward
            action = e.sample.right if answer == "right" else e.sample.wrong
            if e.output.reward != pytest.approx(expected):
                self._fail(
                    f"env '{self._name()}' gave reward {e.output.reward!r} for the {answer} answer of sample "
                    f"{e.index}, expected {expected!r} (action {action!r}, ground_truth "
                    f"{getattr(e.env, 'ground_truth', None)!r}, metadata {e.output.metadata!r})",
                    f"check how step() parses {action!r} and compares it with self.ground_truth; if the sample is "
                    f"wrong, fix its {answer}/{answer}_reward",
                )

    def test_metrics_aggregate(self) -> None:
        """``get_metrics()`` after a step is a dict of numbers; ``aggregate_metrics`` of them is finite floats.

        Troubleshooting: return ``{"name": float(...)}`` from ``get_metrics``; a custom ``aggregate_metrics`` (a
        staticmethod taking a list of such dicts) must return ``{"name": float}`` with finite values.
        """
        env_cls = self._env_class()
        metrics: list[dict[str, Any]] = []
        for answer in ("right", "wrong"):
            episodes = self._episodes(answer)
            try:
                metrics += [self._metrics_of(episode) for episode in episodes]
            finally:
                self._close_quietly(*episodes)
        fix = "aggregate_metrics(list of get_metrics() dicts) must return a dict of str -> finite float"
        aggregated = self._call("aggregate_metrics()", "the metrics of every sample",
                                lambda: env_cls.aggregate_metrics(metrics), fix)
        if not isinstance(aggregated, Mapping):
            self._fail(f"env '{self._name()}': aggregate_metrics() returned a {type(aggregated).__name__}", fix)
        for key, value in aggregated.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                self._fail(f"env '{self._name()}': aggregate_metrics() value {key!r} must be a finite float, got "
                           f"{type(value).__name__} {value!r}", fix)

    def _metrics_of(self, episode: _Episode) -> dict[str, Any]:
        where = episode.where
        fix = "get_metrics() must return a dict of str -> int/float (e.g. {'correct': 1.0})"
        metrics = self._call("get_metrics()", where, episode.env.get_metrics, fix)
        if not isinstance(metrics, Mapping):
            self._fail(f"env '{self._name()}': get_metrics() returned a {type(metrics).__name__} on {where}", fix)
        for key, value in metrics.items():
            if not isinstance(key, str) or not isinstance(value, (int, float)):
                self._fail(f"env '{self._name()}': get_metrics() value {key!r} must be a number (int or float), "
                           f"got {type(value).__name__} {value!r} on {where}", fix)
        return dict(metrics)

    def test_close_is_safe(self) -> None:
        """``close()`` does not raise after an episode, nor on an env that never ran.

        Troubleshooting: guard resources in ``close`` (``if self._proc is not None: ...``); it is also called
        after an error, before or after ``init``.
        """
        fix = "close() must not raise; release only what was acquired, it may run before init() or after step()"
        env_cls = self._env_class()
        for index, sample in enumerate(self._samples()):
            episode = self._episode(env_cls, index, sample, "right")
            self._call("close()", f"sample {index} (after an episode)", episode.env.close, fix)
            fresh, _ = self._construct(env_cls, index, sample)
            self._call("close()", f"sample {index} (a fresh env)", fresh.close, fix)
