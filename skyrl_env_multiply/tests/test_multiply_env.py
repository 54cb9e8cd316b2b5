"""The ``multiply`` env: boxed answers, reward, done after one turn, metrics."""

from __future__ import annotations

import pytest

from skyrl_env_multiply.env import MultiplyEnv, MultiplyEnvConfig

EXTRAS = {"reward_spec": {"method": "rule", "ground_truth": "408"}, "data_source": "synthetic_multiply",
          "extra_info": {"num_digits": 2, "split": "train"}, "max_turns": 1}


def _step(action: str, extras: dict | None = None, config: MultiplyEnvConfig | None = None):
    env = MultiplyEnv(config, dict(extras or EXTRAS))
    out = env.step(action)
    return env, out, env.get_metrics()


@pytest.mark.parametrize("action", ["12 * 34 = \\boxed{408}", "\\boxed{ 408 }", "First \\boxed{408}, then 5"])
def test_correct(action):
    env, out, metrics = _step(action)
    assert out.reward == 1.0 and out.done is True and out.observations == []
    assert out.metadata["parsed_answer"].strip() == "408"
    assert metrics == {"correct": 1.0, "formatted": 1.0}
    assert env.turns == 1


def test_wrong_boxed_answer():
    _, out, metrics = _step("\\boxed{418}")
    assert out.reward == 0.0 and out.done
    assert metrics == {"correct": 0.0, "formatted": 1.0}


@pytest.mark.parametrize(("action", "reward"), [
    ("\\boxed{408}", 1.0),   # correct: the full reward, not the format reward
    ("\\boxed{418}", 0.25),  # wrong but well formed
    ("418", 0.0),             # no boxed answer
    ("\\boxed{}", 0.0),      # an empty box is not an answer
])
def test_format_score_rewards_only_wrong_boxed_answers(action, reward):
    _, out, metrics = _step(action, config=MultiplyEnvConfig(format_score=0.25))
    assert out.reward == reward
    assert metrics["formatted"] == float(reward > 0)


def test_format_score_defaults_to_zero():
    assert MultiplyEnvConfig().format_score == 0.0
    assert _step("\\boxed{418}", config=MultiplyEnvConfig())[1].reward == 0.0


def test_first_box_counts():
    _, out, _ = _step("\\boxed{418} no wait \\boxed{408}")
    assert out.reward == 0.0 and out.metadata["parsed_answer"] == "418"


@pytest.mark.parametrize("action", ["408", "boxed{408}", "\\boxed{}", ""])
def test_unformatted(action):
    _, out, metrics = _step(action)
    assert out.reward == 0.0 and out.done
    assert out.metadata["parsed_answer"] is None
    assert metrics == {"correct": 0.0, "formatted": 0.0}


def test_integer_ground_truth_and_item_access():
    _, out, _ = _step("\\boxed{408}", {"reward_spec": {"method": "rule", "ground_truth": 408}})
    assert out["reward"] == 1.0 and out["done"] is True


def test_init_returns_the_prompt_and_metrics_aggregate():
    env = MultiplyEnv(None, EXTRAS)
    prompt = [{"role": "user", "content": "What is 12 * 34?"}]
    assert env.init(prompt) == (prompt, {})
    assert env.get_metrics() == {}
    episodes = [_step(a)[2] for a in ("\\boxed{408}", "\\boxed{1}", "408", "\\boxed{408}")]
    assert MultiplyEnv.aggregate_metrics(episodes) == {"correct": 0.5, "formatted": 0.75}
