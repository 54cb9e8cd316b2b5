"""Resolving a run's config: defaults -> algorithm preset -> env/dataset defaults -> --config -> key=value."""

from __future__ import annotations

from typing import Any

import attrs

from skyrl_core.config.converter import converter, format_errors
from skyrl_core.config.overrides import deep_merge, dotted_to_tree, parse_override, read_yaml
from skyrl_core.config.redact import redact
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.config.sections import (
    add_selected_sections,
    component_configs,
    component_section,
    field_names,
    get_attr_path,
    get_node,
    section_parents,
    sections_of,
    set_section,
)
from skyrl_core.config.validation import validate_config
from skyrl_core.errors import ConfigError, UnknownNameError
from skyrl_core.hookspecs import Kind
from skyrl_core.plugins import PluginManager, get_plugin_manager
from skyrl_core.registry import did_you_mean

__all__ = ["RunArgs", "add_selected_sections", "component_section", "config_to_dict", "resolve_config",
           "structure_config"]


@attrs.frozen(kw_only=True)
class RunArgs:
    """What the user passed to ``skyrl run`` / ``skyrl config show``."""

    env: str | None = None
    algo: str | None = None
    config_file: str | None = None
    overrides: tuple[str, ...] = ()


def _named(pm: PluginManager, kind: str, name: str, flag: str) -> Any:
    try:
        return pm.registry(kind)[name]
    except UnknownNameError as exc:
        raise UnknownNameError(f"{flag} {name}: {exc}") from None


def resolve_config(args: RunArgs, pm: PluginManager | None = None) -> SkyRLConfig:
    """The validated config of a run; a :class:`ConfigError` lists every problem, one line each.

    Everything is checked here, before anything starts: types and unknown keys, every value's range, the
    relations between values, and that every selected name is registered (``auto`` is resolved at launch).
    """
    pm = pm or get_plugin_manager()
    raw: dict[str, Any] = {}
    if args.algo is not None:
        preset = _named(pm, "algorithms", args.algo, "--algo")
        raw = deep_merge(raw, dotted_to_tree(preset.defaults))
        raw = deep_merge(raw, {"trainer": {"algorithm": {"preset": args.algo}}})
    if args.env is not None:
        _named(pm, "environments", args.env, "--env")
        builder = pm.registry("datasets").get(args.env)
        raw = deep_merge(raw, dotted_to_tree(getattr(builder, "config_defaults", {}) or {}))
        raw = deep_merge(raw, {"environment": {"env_class": args.env}})
    if args.config_file is not None:
        raw = deep_merge(raw, read_yaml(args.config_file))
    problems: list[str] = []
    for arg in args.overrides:
        try:
            path, value = parse_override(arg)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        raw = deep_merge(raw, dotted_to_tree({".".join(path): value}))
    config = structure_config(raw, pm, problems)
    add_selected_sections(config, pm)
    validate_config(config, pm)
    return config


def structure_config(raw: dict[str, Any], pm: PluginManager, problems: list[str] | None = None) -> SkyRLConfig:
    """Structure a nested dict (component sections included) into a :class:`SkyRLConfig`.

    Field validators do not run here: :func:`validate_config` runs all of them and reports every problem at once.
    """
    problems = list(problems or [])
    if not isinstance(raw, dict):
        raise ConfigError(["(root): expected a mapping of sections"])
    raw = deep_merge({}, raw)
    found: list[tuple[tuple[str, ...], Kind, str, Any]] = []
    parent_candidates: dict[type, list[str]] = {}
    for path, parent, kinds in section_parents():
        inline = [k for k in kinds if k.section_key is None]
        inline_names = sorted(n for k in inline for n in component_configs(pm, k.name))
        parent_candidates[parent] = field_names(parent) + [k.section_key for k in kinds if k.section_key] + inline_names
        problems += _clashes(parent, kinds, pm)
        node = get_node(raw, path)
        if node is None:
            continue
        if "sections" in node:
            problems.append(f"{'.'.join((*path, 'sections'))}: unknown key; set a component's keys directly")
            node.pop("sections")
        for kind in inline:
            known = component_configs(pm, kind.name)
            for key in [k for k in node if k not in field_names(parent) and k in known]:
                found.append((path, kind, key, node.pop(key)))
        for kind in (k for k in kinds if k.section_key in node):
            found += _sub_sections(path, kind, node.pop(kind.section_key), pm, problems)
    sections: list[tuple[tuple[str, ...], str, str, Any]] = []
    for path, kind, key, value in found:
        where = kind.section_path(key)
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping of {key}'s settings")
            continue
        try:
            sections.append((path, kind.name, key, structure_unvalidated(value, component_configs(pm, kind.name)[key])))
        except Exception as exc:  # noqa: BLE001 - cattrs raises exception groups
            problems.extend(format_errors(exc, root=where))
    try:
        config = structure_unvalidated(raw, SkyRLConfig)
    except Exception as exc:  # noqa: BLE001
        problems.extend(format_errors(exc, candidates=lambda cls: parent_candidates.get(cls, field_names(cls))))
        config = None
    if problems or config is None:
        raise ConfigError(problems)
    for path, kind_name, key, section in sections:
        set_section(get_attr_path(config, path), kind_name, key, section)
    return config


def _sub_sections(
    path: tuple[str, ...], kind: Kind, holder: Any, pm: PluginManager, problems: list[str]
) -> list[tuple[tuple[str, ...], Kind, str, Any]]:
    """The sections under a kind's sub-key (``generator.weight_sync: {nccl: {...}}``)."""
    where = kind.sections_path
    if not isinstance(holder, dict):
        problems.append(f"{where}: expected a mapping of {kind.label} names to their settings")
        return []
    known = component_configs(pm, kind.name)
    found = []
    for key, value in holder.items():
        if key in known:
            found.append((path, kind, key, value))
            continue
        suggestion = did_you_mean(key, list(known))
        hint = f"did you mean '{suggestion}'?" if suggestion else (
            f"{kind.label}s with settings: {', '.join(sorted(known)) or '(none)'}")
        problems.append(f"{where}.{key}: no {kind.label} '{key}' with settings; {hint}")
    return found


def _clashes(parent: type, kinds: list[Kind], pm: PluginManager) -> list[str]:
    """A component whose section would sit where ``parent`` already has a key: one problem each."""
    taken = set(field_names(parent)) | {k.section_key for k in kinds if k.section_key}
    problems = []
    for kind in (k for k in kinds if k.section_key is None):
        for name in sorted(set(component_configs(pm, kind.name)) & taken):
            plugin = pm.registry(kind.name).entry(name).plugin
            problems.append(f"{kind.section_path(name)}: {kind.label} '{name}' of {plugin.label()} registers "
                            f"settings at a key skyrl already uses; the plugin must rename its {kind.label}")
    return problems


def structure_unvalidated(value: Any, cls: type) -> Any:
    """``converter.structure`` with attrs validators off (they all run in :func:`validate_config`)."""
    with attrs.validators.disabled():
        return converter.structure(value, cls)


def config_to_dict(config: SkyRLConfig, *, redact_secrets: bool = True) -> dict[str, Any]:
    """Plain nested dict of the config, component sections at their dotted paths."""
    tree = converter.unstructure(config)
    for path, _, kinds in section_parents():
        node = get_node(tree, path)
        node.pop("sections", None)
        for kind in kinds:
            found = sections_of(get_attr_path(config, path), kind.name)
            if not found:
                continue
            target = node.setdefault(kind.section_key, {}) if kind.section_key else node
            for name, value in found.items():
                target[name] = converter.unstructure(value)
    return redact(tree) if redact_secrets else tree


