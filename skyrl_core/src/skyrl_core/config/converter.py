"""The one strict cattrs converter of skyrl, and the rendering of its errors as one line per problem.

Strictness: unknown keys are rejected; a bool is only ``true``/``false``; an int is not a float or a string; a
float accepts ints and numeric strings (YAML reads ``1e-6`` as a string); a string accepts numbers (``run_name=7``);
a list of strings accepts a single string.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError

from skyrl_core.registry import did_you_mean

_INT_RE = re.compile(r"^[+-]?\d+$")
_UNKNOWN = "\x00unknown\x00"


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected a string, got {value!r}")


def _is_str_list(tp: Any) -> bool:
    return typing.get_origin(tp) is list and typing.get_args(tp) == (str,)


def _is_str_or_str_list(tp: Any) -> bool:
    args = set(typing.get_args(tp))
    return typing.get_origin(tp) in {typing.Union, types.UnionType} and args == {str, list[str]}


def make_converter() -> cattrs.Converter:
    """A fresh strict converter."""
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)

    def structure_str_list(value: Any, _: type) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return [_structure_str(v, str) for v in value]

    def structure_str_or_list(value: Any, _: type) -> str | list[str]:
        if isinstance(value, (list, tuple)):
            return structure_str_list(value, list)
        return _structure_str(value, str)

    conv.register_structure_hook_func(_is_str_list, structure_str_list)
    conv.register_structure_hook_func(_is_str_or_str_list, structure_str_or_list)
    return conv


converter = make_converter()


def format_errors(
    exc: BaseException, root: str = "", candidates: Callable[[type], list[str]] | None = None
) -> list[str]:
    """One line per problem, ``dotted.path: what is wrong``, with a "did you mean" for unknown keys."""

    def describe(error: BaseException, _type: Any) -> str:
        if isinstance(error, ForbiddenExtraKeysError):
            names = candidates(error.cl) if candidates else [f.name for f in attrs.fields(error.cl)]
            return "\n".join(
                f"{_UNKNOWN}{key}\x00{did_you_mean(key, names) or ''}" for key in sorted(error.extra_fields)
            )
        if isinstance(error, KeyError):
            return "required key is missing"
        return str(error) or type(error).__name__

    lines: list[str] = []
    for message in cattrs.transform_error(exc, path="$", format_exception=describe):
        text, _, where = message.rpartition(" @ ")
        path = ".".join(p for p in (root, where.removeprefix("$").lstrip(".")) if p)
        for part in text.split("\n"):
            if part.startswith(_UNKNOWN):
                key, suggestion = part.removeprefix(_UNKNOWN).split("\x00")
                full = f"{path}.{key}" if path else key
                hint = f"; did you mean '{suggestion}'?" if suggestion else ""
                lines.append(f"{full}: unknown key{hint}")
            else:
                lines.append(f"{path or '(root)'}: {part}")
    return lines
