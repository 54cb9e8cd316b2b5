"""Resolving a run's config: defaults -> algorithm preset -> env/dataset defaults -> --config -> key=value."""

from __future__ import annotations

from typing import Any

import attrs

from skyrl_core.config.converter import converter, format_errors
from skyrl_core.config.overrides import deep_merge, dotted_to_tree, parse_override, read_yaml
from skyrl_core.config.redact import redact
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.config.sections import component_configs, field_names, get_attr_path, get_node, section_parents
from skyrl_core.errors import ConfigError
from skyrl_core.plugins import PluginManager, get_plugin_manager


@attrs.frozen(kw_only=True)
class RunArgs:
    """What the user passed to ``skyrl run`` / ``skyrl config show``."""

    env: str | None = None
    algo: str | None = None
    config_file: str | None = None
    overrides: tuple[str, ...] = ()


def resolve_config(args: RunArgs, pm: PluginManager | None = None) -> SkyRLConfig:
    """The validated config of a run; a :class:`ConfigError` lists every problem, one line each."""
    pm = pm or get_plugin_manager()
    raw: dict[str, Any] = {}
    if args.algo is not None:
        preset = pm.registry("algorithms")[args.algo]
        raw = deep_merge(raw, dotted_to_tree(preset.defaults))
        raw = deep_merge(raw, {"trainer": {"algorithm": {"preset": args.algo}}})
    if args.env is not None:
        pm.registry("environments").entry(args.env)
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
    return config


def structure_config(raw: dict[str, Any], pm: PluginManager, problems: list[str] | None = None) -> SkyRLConfig:
    """Structure a nested dict (component sections included) into a :class:`SkyRLConfig`."""
    problems = list(problems or [])
    if not isinstance(raw, dict):
        raise ConfigError(["(root): expected a mapping of sections"])
    raw = deep_merge({}, raw)
    extracted: dict[tuple[str, ...], dict[str, Any]] = {}
    parent_candidates: dict[type, list[str]] = {}
    for path, parent in section_parents():
        known = component_configs(pm, parent)
        parent_candidates[parent] = field_names(parent) + sorted(known)
        node = get_node(raw, path)
        if node is None:
            continue
        if "sections" in node:
            problems.append(f"{'.'.join((*path, 'sections'))}: unknown key; set a component's keys directly")
            node.pop("sections")
        for key in [k for k in node if k not in field_names(parent) and k in known]:
            value = node.pop(key)
            if not isinstance(value, dict):
                problems.append(f"{'.'.join((*path, key))}: expected a mapping of {key}'s settings")
                continue
            try:
                extracted.setdefault(path, {})[key] = converter.structure(value, known[key])
            except Exception as exc:  # noqa: BLE001 - cattrs raises exception groups
                problems.extend(format_errors(exc, root=".".join((*path, key))))
    try:
        config = converter.structure(raw, SkyRLConfig)
    except Exception as exc:  # noqa: BLE001
        problems.extend(format_errors(exc, candidates=lambda cls: parent_candidates.get(cls, field_names(cls))))
        config = None
    if problems or config is None:
        raise ConfigError(problems)
    for path, sections in extracted.items():
        get_attr_path(config, path).sections.update(sections)
    return config


#: Which config key selects a component of each kind, per parent path.
_SELECTORS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("environment",), "env_class", "environments"),
    (("generator",), "backend", "inference_backends"),
    (("generator",), "name", "generators"),
    (("generator",), "weight_sync_backend", "weight_sync_backends"),
    (("trainer",), "strategy", "strategies"),
    (("trainer",), "logger", "loggers"),
    (("trainer", "algorithm"), "preset", "algorithms"),
    (("trainer", "algorithm"), "advantage_estimator", "advantage_estimators"),
    (("trainer", "algorithm"), "policy_loss_type", "policy_losses"),
)


def add_selected_sections(config: SkyRLConfig, pm: PluginManager) -> None:
    """Give every selected component that has a config class its section, with defaults when not set."""
    for path, key, kind in _SELECTORS:
        parent = get_attr_path(config, path)
        names = getattr(parent, key)
        for name in names if isinstance(names, list) else [names]:
            component_section(parent, name, kind, pm)


def component_section(parent: Any, name: str | None, kind: str, pm: PluginManager) -> Any:
    """The config section of component ``name`` under ``parent`` (created with defaults), or ``None``."""
    if name is None or name not in pm.registry(kind):
        return None
    if name not in parent.sections:
        config_cls = pm.registry(kind).entry(name).config_cls
        if config_cls is None:
            return None
        parent.sections[name] = config_cls()
    return parent.sections[name]


def config_to_dict(config: SkyRLConfig, *, redact_secrets: bool = True) -> dict[str, Any]:
    """Plain nested dict of the config, component sections inlined under their parents."""
    tree = converter.unstructure(config)
    for path, _ in section_parents():
        node = get_node(tree, path)
        sections = get_attr_path(config, path).sections
        node.pop("sections", None)
        for name, value in sections.items():
            node[name] = converter.unstructure(value)
    return redact(tree) if redact_secrets else tree

