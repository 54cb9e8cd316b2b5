"""Reading and validating prompt datasets.

A dataset file holds one row per prompt (see ``docs/datasets.md`` and the ``multiply`` example of the overview)::

    {"data_source": "synthetic_multiply",
     "prompt": [{"role": "system", "content": "..."}, {"role": "user", "content": "What is 2 * 3?"}],
     "env_class": "multiply",
     "reward_spec": {"method": "rule", "ground_truth": "6"},
     "extra_info": {"num_digits": 1, "split": "train"}}

Files are Parquet (``.parquet``) or JSON lines (``.jsonl``, or ``.json`` with one object per line or one JSON
list of objects). :func:`read_rows` only reads; :func:`load_prompt_dataset` also validates every row, resolves its
environment and drops prompts that are too long once chat-templated. Every problem is a
:class:`~skyrl_core.errors.DataError` that names the file, the row (0-based within that file) and the column.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import attrs

from skyrl_core.errors import DataError
from skyrl_core.registry import did_you_mean

__all__ = ["PromptDataset", "PromptRow", "load_prompt_dataset", "read_rows"]

logger = logging.getLogger("skyrl.data")

#: Suffix -> reader name. ``.json`` holds either JSON lines or a single JSON list of rows.
SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "json"}
#: Columns that must hold a mapping (pyarrow may hand back a map column as a list of pairs, JSON may store a string).
MAPPING_COLUMNS = ("reward_spec", "extra_info")
#: Conversations per ``apply_chat_template`` call.
TOKENIZE_CHUNK = 512

PathLike = str | os.PathLike[str]


@attrs.frozen
class PromptRow:
    """One validated prompt.

    :param index: the row's position in the concatenation of the dataset files as read (before long prompts are
        dropped); unique within a dataset, used as the GRPO/RLOO group id.
    :param prompt: the chat messages, each a dict with string ``role`` and ``content``.
    :param env_class: the environment that grades it (the row's ``env_class`` or the default).
    :param extras: every other column (``data_source``, ``reward_spec``, ``extra_info``, custom columns).
    """

    index: int
    prompt: list[dict[str, Any]]
    env_class: str
    extras: dict[str, Any]


@attrs.frozen
class PromptDataset:
    """The rows that passed validation, how many were dropped as too long, and the files read."""

    rows: list[PromptRow]
    dropped_too_long: int
    files: list[str]

    def __len__(self) -> int:
        return len(self.rows)


# ----------------------------------------------------------------------------------------------- reading files


def _expand(path: PathLike) -> str:
    return os.path.expandvars(os.path.expanduser(os.fspath(path)))


def _as_path_list(paths: PathLike | Sequence[PathLike]) -> list[str]:
    """``paths`` as a list of expanded strings; a single path is accepted too."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    expanded = [_expand(p) for p in paths]
    if not expanded:
        raise DataError("no dataset files given; set data.train_data / data.val_data to a list of files")
    return expanded


def _read_parquet(path: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"cannot read {path} as Parquet ({exc}); is it a valid .parquet file?") from exc


def _parse_lines(path: str, text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} row {len(rows)} (line {line_no}): invalid JSON ({exc.msg} at column {exc.colno}); "
                "each line must hold one complete JSON object"
            ) from exc
        if not isinstance(row, dict):
            raise DataError(f"{path} row {len(rows)} (line {line_no}): expected a JSON object, got {_type_name(row)}")
        rows.append(row)
    return rows


def _read_json(path: str, kind: str) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc}); check the file and its permissions") from exc
    if kind == "json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                "a .json file must hold one JSON list of rows or one JSON object per line"
            ) from exc
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise DataError(f"{path} row {i}: expected a JSON object, got {_type_name(row)}")
        return rows
    return _parse_lines(path, text)


def _read_file(path: str) -> list[dict[str, Any]]:
    """The rows of one (already expanded) file."""
    p = Path(path)
    kind = SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise DataError(
            f"unsupported dataset file type {p.suffix or '(no suffix)'!r}: {path}; "
            "use .parquet, .jsonl or .json (one JSON object per line)"
        )
    if not p.exists():
        raise DataError(
            f"dataset file not found: {path}; check data.train_data / data.val_data "
            "(or write the files with `skyrl data NAME`)"
        )
    if p.is_dir():
        raise DataError(f"dataset path is a directory: {path}; list the .parquet/.jsonl files inside it instead")
    return _read_parquet(path) if kind == "parquet" else _read_json(path, kind)


def read_rows(paths: PathLike | Sequence[PathLike]) -> list[dict[str, Any]]:
    """Read and concatenate the rows of ``paths`` (``~`` and ``$VARS`` expanded), as plain Python objects.

    Rows are returned as read; no validation beyond the file being readable JSON objects / Parquet.
    """
    rows: list[dict[str, Any]] = []
    for path in _as_path_list(paths):
        rows.extend(_read_file(path))
    return rows


# ----------------------------------------------------------------------------------------------- validation


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _RowProblem(Exception):
    """One problem of one row: the column and what is wrong."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


def _check_prompt(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The validated messages of ``row``; ``None``-valued keys that Parquet structs add are removed."""
    if "prompt" not in row:
        columns = ", ".join(sorted(row)) or "none"
        raise _RowProblem("prompt", f"missing (the row has columns: {columns})")
    prompt = row["prompt"]
    if prompt is None:
        raise _RowProblem("prompt", "missing (null); expected a list of {role, content} messages")
    if not isinstance(prompt, list):
        raise _RowProblem("prompt", f"expected a list of {{role, content}} messages, got {_type_name(prompt)}")
    if not prompt:
        raise _RowProblem("prompt", "expected a non-empty list of {role, content} messages, got an empty list")
    messages = []
    for j, message in enumerate(prompt):
        if not isinstance(message, dict):
            raise _RowProblem("prompt", f"message {j}: expected a {{role, content}} dict, got {_type_name(message)}")
        for key in ("role", "content"):
            if message.get(key) is None:
                raise _RowProblem("prompt", f"message {j} has no {key!r}")
            if not isinstance(message[key], str):
                raise _RowProblem("prompt", f"message {j}: {key!r} must be a string, got {_type_name(message[key])}")
        messages.append({k: v for k, v in message.items() if v is not None})
    return messages


def _check_env_class(row: dict[str, Any], default: str | None, known: list[str]) -> str:
    value = row.get("env_class")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _RowProblem("env_class", f"expected a non-empty string, got {value!r}")
    name = value if value is not None else default
    available = ", ".join(known) or "(none registered)"
    if name is None:
        raise _RowProblem(
            "env_class",
            "missing, and environment.env_class is not set; add an env_class column to the data or set "
            f"environment.env_class=NAME (available: {available})",
        )
    if name not in known:
        suggestion = did_you_mean(name, known)
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        source = "" if value is not None else " (from environment.env_class)"
        raise _RowProblem("env_class", f"unknown environment {name!r}{source}{hint}; available: {available}")
    return name


def _as_mapping(column: str, value: Any) -> dict[str, Any]:
    """``value`` as a dict: ``None`` -> ``{}``, a JSON-object string or a list of pairs (Parquet map) -> dict."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict):
            return decoded
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return {k: v for k, v in value}
    raise _RowProblem(column, f"expected a mapping (JSON object), got {_type_name(value)}")


def _check_row(row: dict[str, Any], index: int, default_env: str | None, known: list[str]) -> PromptRow:
    prompt = _check_prompt(row)
    env_class = _check_env_class(row, default_env, known)
    extras = {k: v for k, v in row.items() if k not in ("prompt", "env_class")}
    for column in MAPPING_COLUMNS:
        if column in extras:
            extras[column] = _as_mapping(column, extras[column])
    return PromptRow(index=index, prompt=prompt, env_class=env_class, extras=extras)


def _prompt_lengths(rows: list[PromptRow], tokenizer: Any, where: list[tuple[str, int]]) -> list[int]:
    """Token count of each prompt after the chat template (with the generation prompt), in batches."""
    lengths: list[int] = []
    for start in range(0, len(rows), TOKENIZE_CHUNK):
        chunk = rows[start : start + TOKENIZE_CHUNK]
        try:
            ids = tokenizer.apply_chat_template(
                [r.prompt for r in chunk], add_generation_prompt=True, tokenize=True, return_dict=False
            )
        except Exception:
            ids = [_tokenize_one(r, tokenizer, where[start + k]) for k, r in enumerate(chunk)]
        lengths.extend(len(x) for x in ids)
    return lengths


def _tokenize_one(row: PromptRow, tokenizer: Any, where: tuple[str, int]) -> list[int]:
    """Tokenize one prompt; a template failure becomes a DataError naming the row."""
    try:
        return tokenizer.apply_chat_template(row.prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
    except Exception as exc:
        path, line = where
        raise DataError(
            f"{path} row {line}, column 'prompt': the tokenizer's chat template rejected it "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def load_prompt_dataset(
    paths: PathLike | Sequence[PathLike],
    *,
    tokenizer: Any,
    max_prompt_length: int,
    default_env_class: str | None,
    known_envs: Collection[str],
) -> PromptDataset:
    """Read, validate and length-filter the prompt rows of ``paths``.

    Each row needs ``prompt`` (a non-empty list of messages with string ``role`` and ``content``) and an
    environment: its ``env_class`` column, else ``default_env_class``; the name must be in ``known_envs``.
    ``reward_spec`` and ``extra_info``, when present, come back as dicts. Prompts longer than
    ``max_prompt_length`` tokens after ``tokenizer``'s chat template (with the generation prompt) are dropped and
    counted. Raises :class:`DataError` for the first bad row (with the number of other bad rows), for unreadable
    files, and when no prompt is left.
    """
    files = _as_path_list(paths)
    known = sorted(known_envs)
    rows: list[PromptRow] = []
    where: list[tuple[str, int]] = []  # (file, row within file) of each kept row
    first_problem: str | None = None
    bad_rows = 0
    total = 0
    for path in files:
        for line, raw in enumerate(_read_file(path)):
            try:
                rows.append(_check_row(raw, total, default_env_class, known))
                where.append((path, line))
            except _RowProblem as problem:
                bad_rows += 1
                if first_problem is None:
                    first_problem = f"{path} row {line}, column {problem.column!r}: {problem.message}"
            total += 1
    if first_problem is not None:
        more = bad_rows - 1
        suffix = f" (and {more} more row{'s' if more != 1 else ''} with problems)" if more else ""
        raise DataError(first_problem + suffix)
    if total == 0:
        raise DataError(f"the dataset has no rows: {', '.join(files)}")

    lengths = _prompt_lengths(rows, tokenizer, where)
    kept = [row for row, n in zip(rows, lengths, strict=True) if n <= max_prompt_length]
    dropped = len(rows) - len(kept)
    if dropped:
        logger.warning(
            "dropped %d of %d prompts longer than trainer.max_prompt_length=%d tokens",
            dropped,
            len(rows),
            max_prompt_length,
        )
    if not kept:
        raise DataError(
            f"no prompts left in {', '.join(files)}: all {dropped} are longer than "
            f"trainer.max_prompt_length={max_prompt_length} tokens (the longest has {max(lengths)}); "
            "raise trainer.max_prompt_length"
        )
    return PromptDataset(rows=kept, dropped_too_long=dropped, files=files)
