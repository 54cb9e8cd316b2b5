"""The ``gsm8k`` builder from local files (folder and single-file forms) and its fast offline failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skyrl_core.errors import DataError, UserError
from skyrl_env_gsm8k.dataset import (
    INSTRUCTION,
    GSM8KDataConfig,
    Gsm8kDatasetBuilder,
    ground_truth_of,
    hub_reachable,
)

SKYRL = str(Path(sys.executable).parent / "skyrl")


def invented_problems(count: int, offset: int = 0) -> list[dict[str, str]]:
    """GSM8K-style rows made up for the tests: 'A crate holds N apples ...'."""
    rows = []
    for i in range(offset, offset + count):
        crates, per_crate = i + 2, 125 * (i + 1)
        total = crates * per_crate
        rows.append({
            "question": f"A crate holds {per_crate} apples. How many apples are in {crates} crates?",
            "answer": f"{crates} crates hold {crates} * {per_crate} = <<{crates}*{per_crate}={total}>>{total} "
                      f"apples.\n#### {total:,}",
        })
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def build(tmp_path: Path, **options) -> tuple[list[dict], list[dict]]:
    files = Gsm8kDatasetBuilder().build(tmp_path / "out", GSM8KDataConfig(**options))
    assert files.train == tmp_path / "out" / "train.parquet"
    assert files.validation == tmp_path / "out" / "validation.parquet"
    return pq.read_table(files.train).to_pylist(), pq.read_table(files.validation).to_pylist()


def test_ground_truth_of():
    assert ground_truth_of("3 * 400 = 1200\n#### 1,200 ") == "1200"
    assert ground_truth_of("no marker") is None


def test_folder_source(tmp_path):
    src = tmp_path / "gsm8k"
    src.mkdir()
    train_rows, test_rows = invented_problems(6), invented_problems(3, offset=100)
    write_jsonl(src / "train.jsonl", train_rows)
    write_jsonl(src / "test.jsonl", test_rows)
    train, val = build(tmp_path, source=str(src))
    assert len(train) == 6 and len(val) == 3
    assert set(train[0]) == {"data_source", "prompt", "env_class", "reward_spec", "extra_info"}
    first = train[0]
    assert first["data_source"] == "openai/gsm8k"
    assert first["env_class"] == "gsm8k"
    assert first["prompt"] == [{"role": "user", "content": f"{train_rows[0]['question']} {INSTRUCTION}"}]
    assert first["reward_spec"] == {"method": "rule", "ground_truth": "250"}  # 2 * 125
    assert first["extra_info"] == {"split": "train", "index": 0, "question": train_rows[0]["question"],
                                   "answer": train_rows[0]["answer"]}
    # 102 crates of 12,625 apples = 1,287,750: the comma-separated answer becomes plain digits
    assert val[0]["reward_spec"]["ground_truth"] == "1287750"
    assert [r["extra_info"]["split"] for r in val] == ["test"] * 3
    assert [r["extra_info"]["index"] for r in val] == [0, 1, 2]


def test_folder_with_validation_parquet_and_sample_limits(tmp_path):
    src = tmp_path / "gsm8k"
    src.mkdir()
    write_jsonl(src / "train.jsonl", invented_problems(8))
    pq.write_table(pa.Table.from_pylist(invented_problems(4, offset=50)), src / "validation.parquet")
    train, val = build(tmp_path, source=str(src), max_train_samples=5, max_val_samples=2)
    assert len(train) == 5 and len(val) == 2
    assert val[0]["extra_info"]["question"].startswith("A crate holds 6375 apples")


def test_single_file_is_split_90_10_deterministically(tmp_path):
    source = write_jsonl(tmp_path / "all.jsonl", invented_problems(20))
    train, val = build(tmp_path, source=str(source))
    assert len(train) == 18 and len(val) == 2
    questions = [r["extra_info"]["question"] for r in train + val]
    assert sorted(questions) == sorted(p["question"] for p in invented_problems(20))
    again_train, again_val = build(tmp_path, source=str(source))
    assert again_train == train and again_val == val


def test_single_json_array_file(tmp_path):
    source = tmp_path / "all.json"
    source.write_text(json.dumps(invented_problems(3)), encoding="utf-8")
    train, val = build(tmp_path, source=str(source))
    assert len(train) == 2 and len(val) == 1


def test_bad_sources(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        build(tmp_path, source=str(tmp_path / "missing.jsonl"))
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(UserError, match="no train file"):
        build(tmp_path, source=str(empty))
    wrong_columns = write_jsonl(tmp_path / "wrong.jsonl", [{"q": "x", "a": "#### 1"}] * 3)
    with pytest.raises(DataError, match="'question' and 'answer'"):
        build(tmp_path, source=str(wrong_columns))
    no_marker = write_jsonl(tmp_path / "nomarker.jsonl", [{"question": "x", "answer": "just 4"}] * 3)
    with pytest.raises(DataError, match="####"):
        build(tmp_path, source=str(no_marker))
    with pytest.raises(UserError, match="at least 1"):
        GSM8KDataConfig(max_train_samples=0)


def test_cli_with_source_file(tmp_path):
    source = write_jsonl(tmp_path / "all.jsonl", invented_problems(10))
    out = tmp_path / "out"
    result = subprocess.run([SKYRL, "data", "gsm8k", "--output-dir", str(out), "--source", str(source)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out / "train.parquet").num_rows == 9
    assert pq.read_table(out / "validation.parquet").num_rows == 1


def _run_without_source(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    full_env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), **env}  # an empty HF cache
    start = time.monotonic()
    result = subprocess.run([SKYRL, "data", "gsm8k", "--output-dir", str(tmp_path / "out")],
                            capture_output=True, text=True, env=full_env, timeout=120)
    return result, time.monotonic() - start


def _assert_fast_failure(result: subprocess.CompletedProcess[str], seconds: float) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--source" in result.stderr and "Traceback" not in result.stderr
    assert seconds < 20, f"the offline failure took {seconds:.1f}s"


def test_offline_failure_is_fast(tmp_path):
    """This machine has no route to the Hub: the builder must say so within seconds, pointing to --source."""
    if hub_reachable():
        pytest.skip("the Hugging Face Hub is reachable from this machine")
    _assert_fast_failure(*_run_without_source(tmp_path))


def test_offline_failure_with_unreachable_endpoint_or_offline_flag(tmp_path):
    # Port 9 on localhost refuses at once: works whether or not the machine has a network.
    _assert_fast_failure(*_run_without_source(tmp_path, HF_ENDPOINT="http://127.0.0.1:9"))
    _assert_fast_failure(*_run_without_source(tmp_path, HF_HUB_OFFLINE="1"))


def test_unreachable_hub_loads_from_the_cache_only(tmp_path, monkeypatch):
    """With the Hub unreachable, ``load_dataset`` runs in offline mode (cache only) and the flags are restored."""
    datasets = pytest.importorskip("datasets")
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    pytest.importorskip("datasets.config")

    from skyrl_env_gsm8k import dataset as module

    seen = {}

    def fake_load_dataset(name, config_name):
        seen.update(name=name, config=config_name, offline=(datasets.config.HF_HUB_OFFLINE,
                                                            hub_constants.HF_HUB_OFFLINE))
        return {"train": invented_problems(4), "test": invented_problems(2, offset=10)}

    before = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(module, "hub_reachable", lambda timeout=0: False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    train, val = build(tmp_path)
    assert seen == {"name": "openai/gsm8k", "config": "main", "offline": (True, True)}
    assert (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE) == before
    assert len(train) == 4 and len(val) == 2
    assert val[0]["extra_info"]["split"] == "test"
