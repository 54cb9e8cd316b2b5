"""`--env NAME` without data paths, and GSM8K end to end from a local copy (no network)."""

from __future__ import annotations

import json

import pytest
from e2e_helpers import read_metrics, run_config

from skyrl_core.errors import UserError
from skyrl_core.trainer.launch import launch, resolve_data

# Hand-written GSM8K-style problems in GSM8K's own JSONL layout (question, answer with "#### <number>").
PROBLEMS = [
    ("Tom has 3 boxes with 4 pens each. How many pens does he have?", "3 * 4 = 12\n#### 12"),
    ("A shop sells 7 apples in the morning and 5 in the evening. How many apples in total?", "7 + 5 = 12\n#### 12"),
    ("Mia reads 10 pages a day for 3 days. How many pages?", "10 * 3 = 30\n#### 30"),
    ("A tank holds 1,200 liters and loses 200. How many liters are left?", "1200 - 200 = 1000\n#### 1,000"),
]


def test_env_without_data_uses_home_data_folder(plugin_manager, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    home_data = tmp_path / "data" / "multiply"
    plugin_manager.registry("datasets")["multiply"].build(home_data, None)
    config = run_config(plugin_manager, tmp_path / "model", tmp_path / "run")
    train, val = resolve_data(config, plugin_manager, tmp_path / "run")
    assert train == [str(home_data / "train.parquet")] and val == [str(home_data / "validation.parquet")]


def test_env_without_data_builds_into_the_run_folder(plugin_manager, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = run_config(plugin_manager, tmp_path / "model", tmp_path / "run", "data.multiply.train_size=8",
                        "data.multiply.val_size=2")
    train, val = resolve_data(config, plugin_manager, tmp_path / "run")
    assert train == [str(tmp_path / "run" / "data" / "train.parquet")]
    assert (tmp_path / "run" / "data" / "validation.parquet").is_file() and len(val) == 1


def test_gsm8k_without_network_or_local_data_is_a_clear_user_error(plugin_manager, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = run_config(plugin_manager, tmp_path / "model", tmp_path / "run", env="gsm8k")
    with pytest.raises(UserError, match="--source"):
        resolve_data(config, plugin_manager, tmp_path / "run")


def test_gsm8k_trains_from_a_local_copy(ray_local, plugin_manager, skyrl_cli, tiny_model_path, tmp_path):
    source = tmp_path / "gsm8k.jsonl"
    source.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PROBLEMS * 4))
    data = tmp_path / "gsm8k_data"
    built = skyrl_cli("data", "gsm8k", "--output-dir", str(data), "--source", str(source))
    assert built.returncode == 0, built.stderr
    out = tmp_path / "run"
    config = run_config(plugin_manager, tiny_model_path, out, f"data.train_data=['{data / 'train.parquet'}']",
                        f"data.val_data=['{data / 'validation.parquet'}']", "trainer.max_training_steps=2",
                        "trainer.max_prompt_length=256", "environment.gsm8k.method=flexible", env="gsm8k")
    launch(config, plugin_manager)
    steps = [m for m in read_metrics(out) if "reward/gsm8k/mean" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert all("environment/gsm8k/has_answer" in m for m in steps)
