"""The ``multiply`` builder: row format, correct ground truths, determinism, disjoint splits, options."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from skyrl_core.config.loader import RunArgs, resolve_config
from skyrl_core.errors import UserError
from skyrl_env_multiply.dataset import MultiplyDataConfig, MultiplyDatasetBuilder, sample_problems

SKYRL = str(Path(sys.executable).parent / "skyrl")
QUESTION = re.compile(r"^What is (\d+) \* (\d+)\?$")


def build(path: Path, **options) -> tuple[list[dict], list[dict]]:
    files = MultiplyDatasetBuilder().build(path, MultiplyDataConfig(**options))
    assert files.train == path / "train.parquet" and files.validation == path / "validation.parquet"
    return pq.read_table(files.train).to_pylist(), pq.read_table(files.validation).to_pylist()


def factors(row: dict) -> tuple[int, int]:
    match = QUESTION.match(row["prompt"][-1]["content"])
    assert match, row["prompt"]
    return int(match.group(1)), int(match.group(2))


def test_rows_follow_the_tutorial_format(tmp_path):
    train, val = build(tmp_path, num_digits=3, train_size=30, val_size=7, seed=3)
    assert len(train) == 30 and len(val) == 7
    for rows, split in ((train, "train"), (val, "validation")):
        for row in rows:
            assert set(row) == {"data_source", "prompt", "env_class", "reward_spec", "extra_info"}
            assert row["data_source"] == "synthetic_multiply" and row["env_class"] == "multiply"
            system, user = row["prompt"]
            assert system["role"] == "system" and "\\boxed{}" in system["content"]
            assert user["role"] == "user"
            a, b = factors(row)
            assert 100 <= a <= 999 and 100 <= b <= 999
            assert row["reward_spec"] == {"method": "rule", "ground_truth": str(a * b)}
            assert row["extra_info"] == {"num_digits": 3, "split": split}


def test_deterministic_for_a_seed(tmp_path):
    first = build(tmp_path / "a", train_size=50, val_size=10, seed=7)
    assert build(tmp_path / "b", train_size=50, val_size=10, seed=7) == first
    assert build(tmp_path / "c", train_size=50, val_size=10, seed=8) != first
    # the validation split does not depend on the training size
    assert build(tmp_path / "d", train_size=20, val_size=10, seed=7)[1] == first[1]


def test_validation_is_disjoint_from_train(tmp_path):
    train, val = build(tmp_path, num_digits=2, train_size=1000, val_size=100)
    key = lambda row: tuple(sorted(factors(row)))  # noqa: E731 - a*b and b*a are the same problem
    val_keys = {key(r) for r in val}
    assert len(val_keys) == 100
    assert not val_keys & {key(r) for r in train}
    assert len({key(r) for r in train}) == 1000


def test_tiny_problem_space_still_fills_the_splits():
    # one digit: 45 distinct unordered problems
    val = sample_problems(random.Random(0), 10, 1, exclude=set())
    keys = {tuple(sorted(p)) for p in val}
    train = sample_problems(random.Random(1), 200, 1, exclude=keys)
    assert len(train) == 200
    assert len({tuple(sorted(p)) for p in train}) == 35  # every problem not in validation
    assert not keys & {tuple(sorted(p)) for p in train}
    everything = sample_problems(random.Random(2), 60, 1, exclude=set())
    overlap = sample_problems(random.Random(3), 5, 1, exclude={tuple(sorted(p)) for p in everything})
    assert len(overlap) == 5  # nothing left to avoid: overlap is allowed


@pytest.mark.parametrize(("option", "value"), [("num_digits", 0), ("num_digits", 19), ("train_size", 0),
                                               ("val_size", 0)])
def test_invalid_options(option, value):
    with pytest.raises(UserError, match=f"--{option.replace('_', '-')}"):
        MultiplyDataConfig(**{option: value})


def test_config_defaults_apply_to_a_run(plugin_manager):
    config = resolve_config(RunArgs(env="multiply", overrides=("data.multiply.num_digits=3",)),
                            plugin_manager)
    assert config.generator.sampling_params.max_generate_length == 64
    assert config.generator.eval_sampling_params.max_generate_length == 64
    assert config.generator.eval_sampling_params.temperature == 0.0
    assert config.trainer.max_prompt_length == 128
    assert config.data.sections["datasets"]["multiply"] == MultiplyDataConfig(num_digits=3)
    assert config.environment.env_class == "multiply"


def test_cli(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [SKYRL, "data", "multiply", "--output-dir", str(out), "--num-digits", "2", "--train-size", "20",
         "--val-size", "5", "--seed", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    train = pq.read_table(out / "train.parquet").to_pylist()
    val = pq.read_table(out / "validation.parquet").to_pylist()
    assert len(train) == 20 and len(val) == 5
    assert (train, val) == build(tmp_path / "direct", num_digits=2, train_size=20, val_size=5, seed=1)

    bad = subprocess.run([SKYRL, "data", "multiply", "--output-dir", str(out), "--num-digits", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--num-digits" in bad.stderr and "Traceback" not in bad.stderr
