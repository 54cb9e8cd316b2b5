"""Configuration: layering, override syntax, strict errors, component sections, secrets."""

from __future__ import annotations

import attrs
import pytest
import yaml

from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput, hookimpl
from skyrl_core.config.converter import converter
from skyrl_core.config.loader import RunArgs, config_to_dict, resolve_config, structure_config
from skyrl_core.config.overrides import parse_override, parse_value
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import ConfigError, UnknownNameError
from skyrl_core.inference.base import InferenceEngine
from skyrl_core.strategy.base import Strategy

#: Every key=value of the launch command in the original SkyRL overview.
SEED_LAUNCH = [
    "data.train_data=['$HOME/data/gsm8k/train.parquet']",
    "data.val_data=['$HOME/data/gsm8k/validation.parquet']",
    "trainer.algorithm.advantage_estimator=grpo",
    "trainer.policy.model.path=Qwen/Qwen2.5-1.5B-Instruct",
    "trainer.strategy=fsdp2",
    "trainer.placement.colocate_all=true",
    "trainer.placement.policy_num_gpus_per_node=4",
    "trainer.eval_batch_size=1024",
    "trainer.eval_before_train=true",
    "trainer.eval_interval=5",
    "trainer.ckpt_interval=10",
    "generator.backend=vllm",
    "generator.num_inference_engines=4",
    "generator.inference_engine_tensor_parallel_size=1",
    "generator.weight_sync_backend=nccl",
    "environment.env_class=gsm8k",
    "trainer.logger=wandb",
    "trainer.project_name=gsm8k",
    "trainer.run_name=gsm8k_test",
]


class _FakeEngine(InferenceEngine):
    """Stands in for skyrl-vllm's engine (only registered, never built)."""


class _FakeStrategy(Strategy):
    """Stands in for skyrl-fsdp's strategy (only registered, never built)."""


class _SeedBackends:
    @hookimpl
    def register_inference_backends(self, register):
        register("vllm", _FakeEngine)

    @hookimpl
    def register_strategies(self, register):
        register("fsdp2", _FakeStrategy)


SEED_PLUGIN = (
    "from skyrl_core import hookimpl\n"
    "@hookimpl\n"
    "def register_inference_backends(register):\n"
    "    register('vllm', 'skyrl_core.inference.base:InferenceEngine')\n"
    "@hookimpl\n"
    "def register_strategies(register):\n"
    "    register('fsdp2', 'skyrl_core.strategy.base:Strategy')\n"
)


@pytest.fixture
def seed_data(tmp_path, monkeypatch):
    """SkyRL's overview paths ($HOME/data/gsm8k/...) made to exist under a temporary HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / "data" / "gsm8k"
    folder.mkdir(parents=True)
    for name in ("train.parquet", "validation.parquet"):
        (folder / name).write_bytes(b"")
    return tmp_path


def test_seed_launch_command_resolves(plugin_manager, register_plugin, seed_data):
    register_plugin(_SeedBackends())
    config = resolve_config(RunArgs(overrides=tuple(SEED_LAUNCH)), plugin_manager)
    assert config.data.train_data == ["$HOME/data/gsm8k/train.parquet"]
    assert config.trainer.placement.policy_num_gpus_per_node == 4
    assert config.trainer.placement.colocate_all is True
    assert config.generator.backend == "vllm" and config.generator.weight_sync_backend == "nccl"
    assert config.trainer.strategy == "fsdp2" and config.environment.env_class == "gsm8k"
    assert config.trainer.logger == "wandb" and config.trainer.run_name == "gsm8k_test"


def test_seed_launch_command_through_cli(skyrl_cli, seed_data):
    plugin = seed_data / "seed_backends_for_cli_test.py"
    plugin.write_text(SEED_PLUGIN)
    result = skyrl_cli("config", "show", "--plugin", str(plugin), *SEED_LAUNCH, env={"HOME": str(seed_data)})
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["trainer"]["eval_interval"] == 5 and shown["trainer"]["ckpt_interval"] == 10
    assert shown["generator"]["num_inference_engines"] == 4
    assert shown["trainer"]["algorithm"]["advantage_estimator"] == "grpo"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.algorithm.advantage_estimatr=grpo", "did you mean 'advantage_estimator'"),
        ("trainer.eval_interval=abc", "trainer.eval_interval: expected an integer"),
        ("trainer.eval_interval", "must be key=value"),
        ("trainer.placement.colocate_all=maybe", "expected true or false"),
        ("trainer.polcy.model.path=x", "did you mean 'policy'"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_no_traceback(skyrl_cli, override, expected):
    result = skyrl_cli("config", "show", override)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and "cattrs" not in result.stderr
    debug = skyrl_cli("--debug", "config", "show", override)
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_all_problems_are_reported_together(plugin_manager):
    with pytest.raises(ConfigError) as info:
        resolve_config(RunArgs(overrides=("trainer.eval_interval=x", "generator.max_turns=y", "data.foo=1")),
                       plugin_manager)
    problems = info.value.problems
    assert len(problems) == 3
    assert any(p.startswith("data.foo: unknown key") for p in problems)


def test_value_syntax():
    assert parse_value("1e-6") == 1e-6
    assert parse_value("['a','b']") == ["a", "b"]
    assert parse_value("null") is None and parse_value("true") is True
    assert parse_value("no") == "no" and parse_value("'007'") == "007"
    assert parse_override("+trainer.seed=3") == (["trainer", "seed"], 3)


def test_layering_later_wins(plugin_manager, tmp_path):
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text("trainer:\n  algorithm:\n    advantage_estimator: grpo\n  seed: 7\n  eval_interval: 2\n")
    config = resolve_config(
        RunArgs(algo="rloo", config_file=str(run_yaml), overrides=("trainer.seed=9",)), plugin_manager
    )
    assert config.trainer.algorithm.advantage_estimator == "grpo"  # file over preset
    assert config.trainer.seed == 9  # command line over file
    assert config.trainer.eval_interval == 2
    assert config.trainer.algorithm.preset == "rloo"
    assert resolve_config(RunArgs(algo="rloo"), plugin_manager).trainer.algorithm.advantage_estimator == "rloo"


def test_missing_config_file_is_a_user_error(skyrl_cli, tmp_path):
    result = skyrl_cli("config", "show", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml" in result.stderr


def test_unknown_algo_suggests(plugin_manager):
    with pytest.raises(UnknownNameError, match="did you mean 'grpo'"):
        resolve_config(RunArgs(algo="grp"), plugin_manager)


@attrs.define(kw_only=True)
class _JudgeConfig:
    model: str = "judge-small"
    api_key: str | None = None
    threshold: float = 0.5


class _JudgeEnv(BaseTextEnv):
    def step(self, action):
        return BaseTextEnvStepOutput(reward=0.0, done=True)


class _JudgePlugin:
    @hookimpl
    def register_environments(self, register):
        register("judge", _JudgeEnv, config_cls=_JudgeConfig)


def test_component_section_by_dotted_keys_and_redacted(plugin_manager, register_plugin):
    register_plugin(_JudgePlugin())
    config = resolve_config(
        RunArgs(env="judge", overrides=("environment.judge.threshold=0.9", "environment.judge.api_key=sk-123")),
        plugin_manager,
    )
    section = config.environment.sections["environments"]["judge"]
    assert isinstance(section, _JudgeConfig) and section.threshold == 0.9 and section.api_key == "sk-123"
    shown = config_to_dict(config)
    assert shown["environment"]["judge"] == {"model": "judge-small", "api_key": "***", "threshold": 0.9}
    assert config_to_dict(config, redact_secrets=False)["environment"]["judge"]["api_key"] == "sk-123"
    with pytest.raises(ConfigError, match=r"environment\.judge\.treshold: unknown key; did you mean 'threshold'"):
        resolve_config(RunArgs(env="judge", overrides=("environment.judge.treshold=1",)), plugin_manager)
    with pytest.raises(ConfigError, match=r"environment\.judge\.threshold: expected a number"):
        resolve_config(RunArgs(env="judge", overrides=("environment.judge.threshold=high",)), plugin_manager)


def test_unstructure_structure_round_trip(plugin_manager, register_plugin, seed_data):
    register_plugin(_SeedBackends())
    config = resolve_config(RunArgs(overrides=tuple(SEED_LAUNCH)), plugin_manager)
    again = structure_config(config_to_dict(config, redact_secrets=False), plugin_manager)
    assert again == config
    assert converter.structure(converter.unstructure(SkyRLConfig()), SkyRLConfig) == SkyRLConfig()


def test_secrets_in_env_like_names_are_redacted(plugin_manager):
    config = resolve_config(RunArgs(overrides=("trainer.policy.model_config_kwargs={hf_token: abc, rope: 2}",)),
                            plugin_manager)
    shown = config_to_dict(config)["trainer"]["policy"]["model_config_kwargs"]
    assert shown == {"hf_token": "***", "rope": 2}
