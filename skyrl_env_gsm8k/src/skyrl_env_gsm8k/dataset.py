"""The ``gsm8k`` dataset builder: GSM8K questions in skyrl's dataset format.

Without ``--source`` the builder loads the Hugging Face dataset ``openai/gsm8k`` (config ``main``; split ``train``
-> ``train.parquet``, split ``test`` -> ``validation.parquet``). Before touching the network it checks in a few
seconds whether the Hub can be reached; when it cannot (or ``HF_HUB_OFFLINE=1`` is set) it only looks in the local
Hugging Face cache, and fails fast with a message that explains ``--source``.

``--source PATH`` reads local files with ``question`` and ``answer`` columns (the GSM8K format, answers ending in
``#### <number>``); ``.jsonl``, ``.json`` (JSON lines or one JSON array) and ``.parquet`` are read:

- a folder holding ``train.<ext>`` and ``test.<ext>`` (or ``validation.<ext>``): used as the two splits; a folder
  with only a train file is split like a single file;
- a single file: split 90/10 into train/validation by a shuffle with a fixed seed (0), so the split is the same on
  every run and machine.
"""

from __future__ import annotations

import json
import os
import random
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import attrs

from skyrl_core.data import DatasetBuilder, DatasetFiles
from skyrl_core.errors import DataError, UserError

HF_DATASET = "openai/gsm8k"
HF_CONFIG = "main"
DATA_SOURCE = "openai/gsm8k"
INSTRUCTION = "Let's think step by step and output the final answer after \"####\"."
EXTENSIONS = (".jsonl", ".json", ".parquet")
#: Seconds to wait when checking whether the Hugging Face Hub can be reached.
HUB_PROBE_TIMEOUT_S = 3.0
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 0


def _positive_or_none(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 1:
        raise UserError(f"--{attribute.name.replace('_', '-')} must be at least 1 (or unset for all rows), got {value}")


@attrs.define(kw_only=True)
class GSM8KDataConfig:
    """Options of ``skyrl data gsm8k`` (and the config section ``data.gsm8k``)."""

    source: str | None = attrs.field(
        default=None,
        metadata={"help": "Local GSM8K data instead of the Hugging Face Hub: a folder with train/test "
                          ".jsonl/.json/.parquet files, or one such file split 90/10."},
    )
    max_train_samples: int | None = attrs.field(
        default=None, validator=_positive_or_none, metadata={"help": "Keep at most this many training rows."}
    )
    max_val_samples: int | None = attrs.field(
        default=None, validator=_positive_or_none, metadata={"help": "Keep at most this many validation rows."}
    )


def ground_truth_of(answer: str) -> str | None:
    """The final answer of a GSM8K reference solution: the text after ``####``, commas removed, stripped."""
    if "####" not in answer:
        return None
    return answer.split("####")[-1].replace(",", "").strip()


def make_row(question: str, answer: str, split: str, index: int) -> dict[str, Any]:
    """One dataset row in skyrl's format (see ``docs/datasets.md``)."""
    truth = ground_truth_of(answer)
    if not truth:
        raise DataError(f"{split} row {index}: the answer has no final '#### <number>' line: {answer[-80:]!r}")
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": f"{question} {INSTRUCTION}"}],
        "env_class": "gsm8k",
        "reward_spec": {"method": "rule", "ground_truth": truth},
        "extra_info": {"split": split, "index": index, "question": question, "answer": answer},
    }


# -- reading local files ----------------------------------------------------------------------------------------


def _read_records(path: Path) -> list[dict[str, Any]]:
    """Rows of one local file as dicts."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
            raise DataError(f"cannot read {path} as parquet: {exc}") from None
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    try:
        if path.suffix == ".json" and stripped.startswith("["):
            records = json.loads(stripped)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"cannot read {path} as JSON lines: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected one JSON object per line (or a JSON array of objects)")
    return records


def _question_answer_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, record in enumerate(_read_records(path)):
        question, answer = record.get("question"), record.get("answer")
        if not isinstance(question, str) or not isinstance(answer, str):
            raise DataError(
                f"{path} row {number}: needs string columns 'question' and 'answer' (GSM8K format), "
                f"found {sorted(record)}"
            )
        pairs.append((question, answer))
    if not pairs:
        raise DataError(f"{path} has no rows")
    return pairs


def _find_split(folder: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for ext in EXTENSIONS:
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    return None


def _split_90_10(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    if len(pairs) < 2:
        raise DataError("a single --source file needs at least 2 rows to split into train and validation")
    order = list(range(len(pairs)))
    random.Random(SPLIT_SEED).shuffle(order)
    n_val = max(1, round(len(pairs) * VALIDATION_FRACTION))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [pairs[i] for i in train], [pairs[i] for i in val]


def load_local(source: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, validation) question/answer pairs from ``--source`` (a folder or a single file)."""
    path = Path(source).expanduser()
    if path.is_dir():
        train_file = _find_split(path, ("train",))
        if train_file is None:
            raise UserError(
                f"--source folder {path} has no train file; expected train.jsonl (or .json/.parquet) and "
                "test.jsonl (or validation.jsonl)"
            )
        val_file = _find_split(path, ("test", "validation"))
        if val_file is None:
            return _split_90_10(_question_answer_pairs(train_file))
        return _question_answer_pairs(train_file), _question_answer_pairs(val_file)
    if path.is_file():
        if path.suffix not in EXTENSIONS:
            raise UserError(f"--source {path}: unsupported file type; use one of {', '.join(EXTENSIONS)}")
        return _split_90_10(_question_answer_pairs(path))
    raise UserError(
        f"--source {path} does not exist; pass a GSM8K .jsonl/.parquet file or a folder with train/test files"
    )


# -- the Hugging Face Hub -----------------------------------------------------------------------------------------


def _offline_hint(reason: str) -> str:
    return (
        f"cannot load {HF_DATASET} from the Hugging Face Hub ({reason}). Download GSM8K elsewhere and pass it with "
        "--source PATH: a folder with train.jsonl and test.jsonl (or .parquet) with 'question' and 'answer' "
        "columns, or a single such file (split 90/10). For `skyrl run`, set data.gsm8k.source=PATH."
    )


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub (or the HTTPS proxy in use) opens within ``timeout`` seconds."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname
    if not host:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def load_hub() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) pairs of ``openai/gsm8k``; offline (or unreachable Hub): from the local HF cache only."""
    offline_flag = _env_true("HF_HUB_OFFLINE") or _env_true("HF_DATASETS_OFFLINE")
    offline = offline_flag or not hub_reachable()
    try:
        import datasets
        import datasets.config
        import huggingface_hub.constants as hub_constants
    except ImportError as exc:
        raise UserError(
            f"the gsm8k builder needs the 'datasets' package ({exc}); pip install 'datasets>=2.19'"
        ) from None
    # Offline: look in the cache only, with no retries against a Hub we cannot reach. The flags are module
    # constants read at import time (names differ across datasets versions), so they are switched for this call.
    flags = [(m, n) for m, n in ((datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE"),
                                 (hub_constants, "HF_HUB_OFFLINE")) if hasattr(m, n)]
    saved = [getattr(m, n) for m, n in flags]
    if offline:
        for module, name in flags:
            setattr(module, name, True)
    try:
        loaded = datasets.load_dataset(HF_DATASET, HF_CONFIG)
    except Exception as exc:  # noqa: BLE001 - network, cache and hub errors all mean the same to the user
        if offline:
            why = "HF_HUB_OFFLINE is set" if offline_flag else "the Hub cannot be reached from this machine"
            reason = f"{why}, and there is no cached copy"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        raise UserError(_offline_hint(reason)) from exc
    finally:
        for (module, name), value in zip(flags, saved):
            setattr(module, name, value)
    return (
        [(r["question"], r["answer"]) for r in loaded["train"]],
        [(r["question"], r["answer"]) for r in loaded["test"]],
    )


# -- the builder ------------------------------------------------------------------------------------------------


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


class Gsm8kDatasetBuilder(DatasetBuilder):
    """Writes ``train.parquet`` and ``validation.parquet`` for the ``gsm8k`` env (see the module docstring)."""

    #: Generation settings for step-by-step solutions; GSM8K prompts are well under 512 tokens.
    config_defaults = {
        "generator.sampling_params.max_generate_length": 512,
        "trainer.max_prompt_length": 512,
    }

    def build(self, output_dir: Path, config: GSM8KDataConfig | None) -> DatasetFiles:
        config = config if config is not None else GSM8KDataConfig()
        train, val = load_local(config.source) if config.source else load_hub()
        train = train[: config.max_train_samples]
        val = val[: config.max_val_samples]
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        files = DatasetFiles(train=output_dir / "train.parquet", validation=output_dir / "validation.parquet")
        _write_parquet([make_row(q, a, "train", i) for i, (q, a) in enumerate(train)], files.train)
        _write_parquet([make_row(q, a, "test", i) for i, (q, a) in enumerate(val)], files.validation)
        return files
