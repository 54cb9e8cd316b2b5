"""Reading and validating prompt datasets (skyrl_core.data.reader)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from skyrl_core.data.reader import PromptDataset, PromptRow, load_prompt_dataset, read_rows
from skyrl_core.errors import DataError, UserError
from skyrl_core.testing.tiny_model import make_tiny_model

KNOWN = {"multiply", "gsm8k"}
SYSTEM = {"role": "system", "content": "Put the final answer in \\boxed{}."}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return AutoTokenizer.from_pretrained(make_tiny_model(tmp_path_factory.mktemp("tiny-model")))


def multiply_row(i: int, **overrides) -> dict:
    """A row in the overview's ``multiply`` format."""
    a, b = i + 2, i + 3
    row = {
        "data_source": "synthetic_multiply",
        "prompt": [SYSTEM, {"role": "user", "content": f"{a} * {b}"}],
        "env_class": "multiply",
        "reward_spec": {"method": "rule", "ground_truth": str(a * b)},
        "extra_info": {"num_digits": 1, "split": "train"},
    }
    row.update(overrides)
    return row


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def load(paths, tokenizer, *, max_prompt_length=512, default_env_class=None, known_envs=KNOWN) -> PromptDataset:
    return load_prompt_dataset(
        paths,
        tokenizer=tokenizer,
        max_prompt_length=max_prompt_length,
        default_env_class=default_env_class,
        known_envs=known_envs,
    )


def load_error(paths, tokenizer, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load(paths, tokenizer, **kwargs)
    assert isinstance(info.value, UserError)
    return str(info.value)


# ------------------------------------------------------------------------------------------------ happy paths


def test_parquet_rows_roundtrip_with_extras(tmp_path, tokenizer):
    rows = [multiply_row(i, difficulty=i) for i in range(4)]
    path = write_parquet(tmp_path / "train.parquet", rows)
    ds = load([str(path)], tokenizer)
    assert len(ds) == 4 and ds.dropped_too_long == 0 and ds.files == [str(path)]
    first = ds.rows[0]
    assert isinstance(first, PromptRow)
    assert first.index == 0 and first.env_class == "multiply"
    assert first.prompt == rows[0]["prompt"]
    assert first.extras == {
        "data_source": "synthetic_multiply",
        "reward_spec": {"method": "rule", "ground_truth": "6"},
        "extra_info": {"num_digits": 1, "split": "train"},
        "difficulty": 0,
    }
    assert "prompt" not in first.extras and "env_class" not in first.extras


def test_jsonl_and_json_list_concatenate_with_global_index(tmp_path, tokenizer):
    a = write_jsonl(tmp_path / "a.jsonl", [multiply_row(0), multiply_row(1)])
    b = tmp_path / "b.json"
    b.write_text(json.dumps([multiply_row(2)]))
    c = write_jsonl(tmp_path / "c.json", [multiply_row(3)])
    ds = load([a, b, c], tokenizer)
    assert [r.index for r in ds.rows] == [0, 1, 2, 3]
    assert [r.extras["reward_spec"]["ground_truth"] for r in ds.rows] == ["6", "12", "20", "30"]


def test_read_rows_expands_user_and_vars(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "d.jsonl", [multiply_row(0)])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SKYRL_TEST_DATA", str(tmp_path))
    assert read_rows(["~/d.jsonl"]) == read_rows(["$SKYRL_TEST_DATA/d.jsonl"]) == [multiply_row(0)]


def test_env_class_falls_back_to_default(tmp_path, tokenizer):
    no_env = multiply_row(0)
    del no_env["env_class"]
    path = write_jsonl(tmp_path / "train.jsonl", [no_env, multiply_row(1, env_class="gsm8k")])
    ds = load([path], tokenizer, default_env_class="multiply")
    assert [r.env_class for r in ds.rows] == ["multiply", "gsm8k"]


def test_parquet_null_env_class_uses_default_and_mappings_are_dicts(tmp_path, tokenizer):
    rows = [multiply_row(0, env_class=None, reward_spec=None), multiply_row(1)]
    path = write_parquet(tmp_path / "train.parquet", rows)
    ds = load([path], tokenizer, default_env_class="gsm8k")
    assert [r.env_class for r in ds.rows] == ["gsm8k", "multiply"]
    assert ds.rows[0].extras["reward_spec"] == {}
    assert isinstance(ds.rows[1].extras["extra_info"], dict)


def test_reward_spec_as_json_string_is_decoded(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "t.jsonl", [multiply_row(0, reward_spec='{"ground_truth": "6"}')])
    assert load([path], tokenizer).rows[0].extras["reward_spec"] == {"ground_truth": "6"}


def test_long_prompts_are_dropped_and_logged(tmp_path, tokenizer, caplog):
    short = [multiply_row(i) for i in range(3)]
    long = [multiply_row(i, prompt=[{"role": "user", "content": "apple garden river " * 80}]) for i in range(2)]
    path = write_parquet(tmp_path / "train.parquet", short + long)
    with caplog.at_level(logging.INFO, logger="skyrl.data"):
        ds = load([path], tokenizer, max_prompt_length=64)
    assert len(ds) == 3 and ds.dropped_too_long == 2
    assert [r.index for r in ds.rows] == [0, 1, 2]
    assert "dropped 2 of 5 prompts longer than trainer.max_prompt_length=64 tokens" in caplog.text


def test_all_prompts_too_long_is_an_error(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "train.jsonl", [multiply_row(0)])
    message = load_error([path], tokenizer, max_prompt_length=3)
    assert "no prompts left" in message and "trainer.max_prompt_length=3" in message


def test_prompt_length_counts_the_generation_prompt(tmp_path, tokenizer):
    row = multiply_row(0)
    n = len(tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False))
    path = write_jsonl(tmp_path / "train.jsonl", [row])
    assert len(load([path], tokenizer, max_prompt_length=n)) == 1
    assert "no prompts left" in load_error([path], tokenizer, max_prompt_length=n - 1)


# ------------------------------------------------------------------------------------------------ malformed data


def test_no_prompt_column(tmp_path, tokenizer):
    rows = [{k: v for k, v in multiply_row(i).items() if k != "prompt"} for i in range(3)]
    path = write_parquet(tmp_path / "train.parquet", rows)
    message = load_error([path], tokenizer)
    assert "train.parquet row 0, column 'prompt': missing" in message
    assert "data_source" in message  # the columns that are there
    assert "and 2 more rows with problems" in message


def test_prompt_is_a_string(tmp_path, tokenizer):
    rows = [multiply_row(i) for i in range(5)]
    rows[3]["prompt"] = "What is 2 * 3?"
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    message = load_error([path], tokenizer)
    assert message == f"{path} row 3, column 'prompt': expected a list of {{role, content}} messages, got str"


def test_message_without_role_counts_other_bad_rows(tmp_path, tokenizer):
    rows = [multiply_row(i) for i in range(6)]
    rows[1]["prompt"] = [{"content": "hi"}]
    rows[4]["prompt"] = []
    rows[5]["prompt"] = [{"role": "user", "content": 3}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    message = load_error([path], tokenizer)
    assert message.startswith(f"{path} row 1, column 'prompt': message 0 has no 'role'")
    assert message.endswith("(and 2 more rows with problems)")


def test_row_number_is_within_its_file(tmp_path, tokenizer):
    good = write_jsonl(tmp_path / "a.jsonl", [multiply_row(0), multiply_row(1)])
    bad = write_jsonl(tmp_path / "b.jsonl", [multiply_row(2), multiply_row(3, prompt=[{"role": "user"}])])
    message = load_error([good, bad], tokenizer)
    assert message == f"{bad} row 1, column 'prompt': message 0 has no 'content'"


def test_unknown_env_class_suggests(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "train.jsonl", [multiply_row(0), multiply_row(1, env_class="multipy")])
    message = load_error([path], tokenizer)
    assert f"{path} row 1, column 'env_class'" in message
    assert "'multipy'" in message and "did you mean 'multiply'?" in message
    assert "available: gsm8k, multiply" in message


def test_missing_env_class_without_default(tmp_path, tokenizer):
    row = multiply_row(0)
    del row["env_class"]
    path = write_jsonl(tmp_path / "train.jsonl", [row])
    message = load_error([path], tokenizer)
    assert f"{path} row 0, column 'env_class': missing" in message and "environment.env_class" in message


def test_bad_mapping_column(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "train.jsonl", [multiply_row(0, extra_info=[1, 2, 3])])
    message = load_error([path], tokenizer)
    assert f"{path} row 0, column 'extra_info': expected a mapping" in message


def test_missing_file(tmp_path, tokenizer):
    message = load_error([str(tmp_path / "nope.parquet")], tokenizer)
    assert "dataset file not found" in message and "nope.parquet" in message and "data.train_data" in message


def test_bad_suffix(tmp_path, tokenizer):
    path = tmp_path / "train.csv"
    path.write_text("prompt\nhi\n")
    message = load_error([path], tokenizer)
    assert "'.csv'" in message and "train.csv" in message and ".parquet, .jsonl or .json" in message


def test_invalid_json_line(tmp_path, tokenizer):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(multiply_row(0)) + "\n\n" + '{"prompt": [\n')
    message = load_error([path], tokenizer)
    assert message.startswith(f"{path} row 1 (line 3): invalid JSON")


def test_json_line_not_an_object(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(DataError, match=r"row 0 \(line 1\): expected a JSON object, got list"):
        read_rows([path])


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "train.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read .*train.parquet as Parquet"):
        read_rows([path])


def test_empty_file_and_no_files(tmp_path, tokenizer):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert "has no rows" in load_error([path], tokenizer)
    assert "no dataset files given" in load_error([], tokenizer)


def test_template_failure_names_the_row(tmp_path, tokenizer):
    class Strict:
        """A tokenizer whose template rejects system messages, like some real ones."""

        def apply_chat_template(self, conversation, **kwargs):
            batch = conversation if isinstance(conversation[0], list) else [conversation]
            for messages in batch:
                if messages[0]["role"] == "system":
                    raise ValueError("System role not supported")
            ids = [[1] * len(m) for m in batch]
            return ids if batch is conversation else ids[0]

    rows = [multiply_row(0, prompt=[{"role": "user", "content": "hi"}]), multiply_row(1)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    message = load_error([path], Strict())
    assert message.startswith(f"{path} row 1, column 'prompt': the tokenizer's chat template rejected it")
    assert "System role not supported" in message
