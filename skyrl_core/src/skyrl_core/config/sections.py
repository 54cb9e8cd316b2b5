"""Component sections: the attrs config classes that plugins register, reachable by dotted keys.

Where a kind's sections live comes from its record in :data:`skyrl_core.hookspecs.KIND_RECORDS`: directly under
the parent (``environment.<env>``, ``data.<dataset>``, ``generator.<backend>``, ``trainer.<strategy>``,
``trainer.algorithm.<policy_loss>``) or under a sub-key of it (``generator.loops.<generator>``,
``generator.weight_sync.<transport>``, ``trainer.loggers.<logger>``, ``trainer.algorithm.presets.<preset>``,
``trainer.algorithm.estimators.<estimator>``), so two kinds registering the same name never share a section.
Structured sections are kept in the parent's ``sections`` dict, keyed by kind then name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.hookspecs import KIND_RECORDS, Kind
from skyrl_core.plugins import PluginManager


def split(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")) if path else ()


def class_at(path: tuple[str, ...], cls: type = SkyRLConfig) -> type:
    """The config class at a dotted path of :class:`SkyRLConfig`."""
    for part in path:
        cls = attrs.fields_dict(cls)[part].type
    return cls


def section_parents() -> Iterator[tuple[tuple[str, ...], type, list[Kind]]]:
    """(path, class, kinds) of every config class that holds component sections."""
    parents: dict[str, list[Kind]] = {}
    for kind in KIND_RECORDS:
        parents.setdefault(kind.section_parent, []).append(kind)
    for path, kinds in parents.items():
        yield split(path), class_at(split(path)), kinds


def component_configs(pm: PluginManager, kind: str) -> dict[str, type]:
    """Name -> config class of the components of ``kind`` that registered one."""
    return {reg.name: reg.config_cls for reg in pm.registry(kind).entries() if reg.config_cls is not None}


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


def sections_of(parent: Any, kind: str) -> dict[str, Any]:
    """Name -> structured section of the components of ``kind`` under ``parent`` (a config object); read-only."""
    return dict(parent.sections.get(kind, {}))


def set_section(parent: Any, kind: str, name: str, section: Any) -> None:
    parent.sections.setdefault(kind, {})[name] = section


def component_section(parent: Any, name: str | None, kind: str, pm: PluginManager) -> Any:
    """The config section of component ``name`` of ``kind`` under ``parent`` (created with defaults), or ``None``.

    ``parent`` is the config object at the kind's ``section_parent`` (``config.generator`` for weight-sync
    transports: their sections live in ``generator.weight_sync.<name>``).
    """
    if name is None or name not in pm.registry(kind):
        return None
    found = sections_of(parent, kind)
    if name not in found:
        config_cls = pm.registry(kind).entry(name).config_cls
        if config_cls is None:
            return None
        set_section(parent, kind, name, config_cls())
    return sections_of(parent, kind)[name]


def selected_names(config: SkyRLConfig, kind: Kind) -> list[str]:
    """The names ``kind``'s selector key picks in ``config`` (none for a kind without a selector)."""
    if kind.selector is None:
        return []
    value = get_attr_path(config, split(kind.selector))
    return [v for v in (value if isinstance(value, list) else [value]) if v is not None]


def add_selected_sections(config: SkyRLConfig, pm: PluginManager) -> None:
    """Give every selected component that has a config class its section, with defaults when not set."""
    for kind in KIND_RECORDS:
        parent = get_attr_path(config, split(kind.section_parent))
        for name in selected_names(config, kind):
            component_section(parent, name, kind.name, pm)
