"""The ``gsm8k`` env: one step, reward from the GSM8K score, metrics, and its config section."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from skyrl_core import BaseTextEnv
from skyrl_core.config.loader import RunArgs, resolve_config
from skyrl_core.errors import ConfigError, UserError
from skyrl_env_gsm8k.env import Gsm8kEnv, GSM8KEnvConfig

# "Ravi reads 15 pages a day for 12 days and then 40 pages on the last day. How many pages did he read?"
EXTRAS = {"reward_spec": {"method": "rule", "ground_truth": "220"}, "data_source": "openai/gsm8k",
          "extra_info": {"split": "test", "index": 3}}
PROMPT = [{"role": "user", "content": "Ravi reads 15 pages a day ... output the final answer after \"####\"."}]


def _episode(action: str, config: GSM8KEnvConfig | None = None):
    env = Gsm8kEnv(config, dict(EXTRAS))
    messages, info = env.init(PROMPT)
    assert messages == PROMPT and info == {}
    out = env.step(action)
    metrics = env.get_metrics()
    env.close()
    return env, out, metrics


def test_correct_strict_answer():
    env, out, metrics = _episode("15 * 12 = 180, plus 40 is 220.\n#### 220")
    assert isinstance(env, BaseTextEnv)
    assert out.reward == 1.0 and out.done is True and out.observations == []
    assert out.metadata["parsed_answer"] == "220"
    assert metrics == {"correct": 1.0, "formatted": 1.0, "has_answer": 1.0}
    assert env.turns == 1


def test_wrong_answer_gets_the_format_score():
    _, out, metrics = _episode("#### 180", GSM8KEnvConfig(format_score=0.1))
    assert out.reward == 0.1
    assert metrics == {"correct": 0.0, "formatted": 1.0, "has_answer": 1.0}


def test_unformatted_answer_under_strict_and_flexible():
    text = "So Ravi read 220 pages."
    _, out, metrics = _episode(text)
    assert out.reward == 0.0 and out.done
    assert metrics == {"correct": 0.0, "formatted": 0.0, "has_answer": 0.0}
    _, out, metrics = _episode(text, GSM8KEnvConfig(method="flexible", correct_score=2.0))
    assert out.reward == 2.0
    assert metrics == {"correct": 1.0, "formatted": 0.0, "has_answer": 1.0}


def test_metrics_aggregate_over_episodes():
    episodes = [_episode(a)[2] for a in ("#### 220", "#### 221", "no idea")]
    agg = Gsm8kEnv.aggregate_metrics(episodes)
    assert agg == pytest.approx({"correct": 1 / 3, "formatted": 2 / 3, "has_answer": 2 / 3})


def test_invalid_method_is_a_user_error():
    with pytest.raises(UserError, match="strict, flexible"):
        GSM8KEnvConfig(method="fuzzy")
    config = GSM8KEnvConfig()
    with pytest.raises(UserError, match="strict, flexible"):
        config.method = "fuzzy"  # attrs validates on assignment too
    duck_typed = SimpleNamespace(method="fuzzy", correct_score=1.0, format_score=0.0)
    with pytest.raises(UserError, match="environment.gsm8k"):
        Gsm8kEnv(duck_typed, EXTRAS)


def test_config_section_from_dotted_keys(plugin_manager):
    config = resolve_config(RunArgs(env="gsm8k", algo="grpo", overrides=(
        "environment.gsm8k.method=flexible", "environment.gsm8k.format_score=0.2")), plugin_manager)
    section = config.environment.sections["environments"]["gsm8k"]
    assert section == GSM8KEnvConfig(method="flexible", correct_score=1.0, format_score=0.2)
    assert config.environment.env_class == "gsm8k"
    assert config.generator.sampling_params.max_generate_length == 512
    assert config.trainer.max_prompt_length == 512
    with pytest.raises(ConfigError, match="environment.gsm8k.method: method must be one of strict, flexible"):
        resolve_config(RunArgs(env="gsm8k", overrides=("environment.gsm8k.method=fuzzy",)), plugin_manager)
