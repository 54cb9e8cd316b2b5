"""Hydra-like ``key=value`` overrides and YAML reading.

Values are YAML scalars or flow collections: numbers (``1e-6`` included), ``true``/``false``, ``null``, lists
(``"['a','b']"``), quoted strings (``"'007'"`` stays a string). Unlike YAML 1.1, ``yes``/``no``/``on``/``off``
are plain strings.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from skyrl_core.errors import ConfigError, UserError


class _Loader(yaml.SafeLoader):
    """SafeLoader with only true/false as booleans and exponent floats without a dot."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_KEY_RE = re.compile(r"^[^\s=.]+(?:\.[^\s=.]+)*$")


def parse_value(text: str) -> Any:
    """A value as written on the command line."""
    if text == "":
        return ""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError:
        return text


def parse_override(arg: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value); a bad override is a :class:`ConfigError`."""
    key, sep, value = arg.partition("=")
    key = key.removeprefix("+").strip()
    if not sep:
        raise ConfigError([f"'{arg}': an override must be key=value (e.g. {arg}=VALUE)"], source="command line")
    if not _KEY_RE.match(key):
        raise ConfigError([f"'{arg}': '{key}' is not a dotted key like trainer.eval_interval"], source="command line")
    return key.split("."), parse_value(value)


def set_dotted(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def dotted_to_tree(values: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in values.items():
        set_dotted(tree, key.split("."), copy.deepcopy(value))
    return tree


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; dicts merge, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"config file '{path}' does not exist; pass an existing YAML file to --config")
    try:
        data = yaml.load(file.read_text(), Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise UserError(f"config file '{path}' is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' must hold a mapping of sections (data:, trainer:, ...)")
    return data
