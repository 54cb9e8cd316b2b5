"""Component sections: the attrs config classes that plugins register, reachable by dotted keys.

A section lives under the parent whose ``sections`` field lists the component's kind:
``environment.<env>``, ``generator.<backend|generator|weight_sync>``, ``trainer.<strategy|logger>``,
``trainer.algorithm.<algorithm|estimator|loss>`` and ``data.<dataset>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.plugins import PluginManager


def section_parents(cls: type = SkyRLConfig, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], type]]:
    """(path, class) of every config class that holds component sections."""
    for field in attrs.fields(cls):
        if field.metadata.get("component_kinds"):
            yield prefix, cls
        elif attrs.has(field.type if isinstance(field.type, type) else type(None)):
            yield from section_parents(field.type, (*prefix, field.name))


def component_configs(pm: PluginManager, parent: type) -> dict[str, type]:
    """Section name -> config class of the components that live under ``parent``."""
    kinds = attrs.fields_dict(parent)["sections"].metadata["component_kinds"]
    found: dict[str, type] = {}
    for kind in kinds:
        for reg in pm.registry(kind).entries():
            if reg.config_cls is not None:
                found.setdefault(reg.name, reg.config_cls)
    return found


def field_names(cls: type) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.name != "sections"]


def get_node(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = tree
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node if isinstance(node, dict) else None


def get_attr_path(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj
