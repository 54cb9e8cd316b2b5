"""Every check of a resolved config, run before anything starts; one line per problem, all reported together.

Three layers: each field's own check (declared with the field in :mod:`skyrl_core.config.schema`, also run on the
sections plugins register), the keys that are accepted but not supported yet, and the relations between keys
(batch sizes, resume settings, KL placement, data files). Selected component names are checked against the
registries by :func:`skyrl_core.config.components.name_problems`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from skyrl_core.config.components import name_problems
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.config.sections import section_parents, sections_of
from skyrl_core.errors import ConfigError, UserError
from skyrl_core.plugins import PluginManager

#: File suffixes the dataset reader accepts (see :mod:`skyrl_core.data.reader`).
DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def validate_config(config: SkyRLConfig, pm: PluginManager) -> None:
    """Raise one :class:`ConfigError` listing every problem of ``config`` (nothing when it is valid)."""
    problems = field_problems(config)
    for path, _, kinds in section_parents():
        parent = config
        for part in path:
            parent = getattr(parent, part)
        for kind in kinds:
            for name, section in sections_of(parent, kind.name).items():
                problems += field_problems(section, kind.section_path(name))
    problems += unsupported_problems(config)
    problems += relation_problems(config)
    problems += name_problems(config, pm)
    problems += _preset_problems(config, pm)
    if problems:
        raise ConfigError(problems)


def field_problems(obj: Any, path: str = "") -> list[str]:
    """Run the validator of every field of ``obj`` and its nested config classes; ``path.key: message`` each."""
    problems = []
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        key = f"{path}.{field.name}" if path else field.name
        if field.validator is not None:
            try:
                field.validator(obj, field, value)
            except (ValueError, TypeError, UserError) as exc:  # plugins' validators may raise any of them
                problems.append(f"{key}: {exc}")
        if attrs.has(type(value)):
            problems += field_problems(value, key)
    return problems


def unsupported_problems(obj: Any, path: str = "") -> list[str]:
    """A field marked ``unsupported`` that is set to anything but its default: "not supported yet"."""
    problems = []
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        key = f"{path}.{field.name}" if path else field.name
        if field.metadata.get("unsupported") and value != _default(field):
            problems.append(f"{key}: not supported yet (got {value!r}); remove it to use the default "
                            f"{_default(field)!r}")
        elif attrs.has(type(value)):
            problems += unsupported_problems(value, key)
    return problems


def _default(field: attrs.Attribute) -> Any:
    default = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[misc]


def relation_problems(config: SkyRLConfig) -> list[str]:
    """Problems between keys: batch sizes, resume settings, KL placement and data files."""
    return (_batch_problems(config) + _resume_problems(config) + _kl_problems(config) + _data_problems(config)
            + _role_deepspeed_problems(config))


def _role_deepspeed_problems(config: SkyRLConfig) -> list[str]:
    """SkyRL's ``trainer.<role>.deepspeed_config`` configures DeepSpeed engines: only with that strategy."""
    strategy = config.trainer.strategy
    if strategy == "deepspeed":
        return []
    return [f"trainer.{role}.deepspeed_config: DeepSpeed's keys need trainer.strategy=deepspeed (it is {strategy}); "
            "set it, or remove them" for role in ("policy", "ref", "critic")
            if getattr(config.trainer, role).deepspeed_config]


def _batch_problems(config: SkyRLConfig) -> list[str]:
    trainer, placement, generator = config.trainer, config.trainer.placement, config.generator
    if min(trainer.train_batch_size, trainer.policy_mini_batch_size, generator.n_samples_per_prompt,
           placement.policy_num_nodes, placement.policy_num_gpus_per_node) < 1:
        return []  # already reported by the fields' own checks
    problems = []
    pairs = [("policy_mini_batch_size", trainer.policy_mini_batch_size)]
    if trainer.critic.model.path is not None:
        pairs.append(("critic_mini_batch_size", trainer.critic_mini_batch_size))
    for name, mini in pairs:
        if mini > trainer.train_batch_size:
            problems.append(f"trainer.{name}: {mini} is larger than trainer.train_batch_size="
                            f"{trainer.train_batch_size}; lower it")
        elif trainer.train_batch_size % mini:
            problems.append(f"trainer.train_batch_size: {trainer.train_batch_size} must be a multiple of "
                            f"trainer.{name}={mini}")
    world = placement.policy_num_nodes * placement.policy_num_gpus_per_node
    rows = trainer.policy_mini_batch_size * generator.n_samples_per_prompt
    if rows % world:
        problems.append(f"trainer.policy_mini_batch_size: policy_mini_batch_size * generator.n_samples_per_prompt = "
                        f"{rows} sequences must split evenly over the {world} policy workers "
                        "(trainer.placement.policy_num_nodes * policy_num_gpus_per_node); change one of them")
    return problems


def _resume_problems(config: SkyRLConfig) -> list[str]:
    trainer = config.trainer
    if trainer.resume_mode == "from_path" and not trainer.resume_path:
        return ["trainer.resume_path: required when trainer.resume_mode=from_path; set it to a checkpoint folder"]
    return []


def _kl_problems(config: SkyRLConfig) -> list[str]:
    """The algorithm's own consistency checks, and a critic where the estimator needs one."""
    from skyrl_core.algorithms.checks import check_algorithm_config

    algorithm = config.trainer.algorithm
    problems = check_algorithm_config(algorithm)
    if algorithm.advantage_estimator == "gae" and config.trainer.critic.model.path is None:
        problems.append("trainer.algorithm.advantage_estimator: 'gae' needs a critic; set "
                        "trainer.critic.model.path (e.g. to the policy's path)")
    return problems


def _preset_problems(config: SkyRLConfig, pm: PluginManager) -> list[str]:
    """The preset's own checks; and ``dynamic_sampling`` keys, which only a preset's batch hooks carry out, are
    refused without such a preset."""
    algorithm = config.trainer.algorithm
    presets = pm.registry("algorithms")
    preset = presets[algorithm.preset] if algorithm.preset in presets else None
    problems = list(preset.check(config)) if preset is not None and preset.check is not None else []
    sampling = algorithm.dynamic_sampling
    if (preset is None or not preset.batch_hooks) and (sampling.type is not None or sampling.min_replace_ratio != 0.3):
        key = "type" if sampling.type is not None else "min_replace_ratio"
        problems.append(f"trainer.algorithm.dynamic_sampling.{key}: needs an algorithm preset whose batch hooks "
                        f"sample dynamically, and --algo {algorithm.preset or '(none)'} has none; choose such a "
                        "preset with --algo (installed as skyrl-algo-<name>) or remove the key")
    return problems


def _data_problems(config: SkyRLConfig) -> list[str]:
    problems = []
    for key in ("train_data", "val_data"):
        for i, name in enumerate(getattr(config.data, key)):
            path = Path(os.path.expandvars(os.path.expanduser(name)))
            where = f"data.{key}[{i}]"
            if not path.exists():
                problems.append(f"{where}: file '{name}' does not exist")
            elif path.is_dir():
                problems.append(f"{where}: '{name}' is a folder; list the .parquet/.jsonl files inside it")
            elif path.suffix not in DATA_SUFFIXES:
                problems.append(f"{where}: '{name}' is not a {', '.join(DATA_SUFFIXES)} file")
    return problems
