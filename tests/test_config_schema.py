"""The whole schema means what it says: every key is read by the code, pending, or refused; values are checked;
kinds never share a section; ``generator.weight_sync_backend=auto`` never puts two NCCL ranks on one GPU."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import attrs
import pytest

import skyrl_core
from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput, hookimpl
from skyrl_core.config import components
from skyrl_core.config.loader import RunArgs, config_to_dict, resolve_config
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import ConfigError

PACKAGE = Path(skyrl_core.__file__).parent


def leaf_fields(cls: type = SkyRLConfig, prefix: str = "", inherited: dict | None = None):
    """(dotted key, field, metadata including a parent section's ``pending``) of every settable key."""
    for field in attrs.fields(cls):
        if field.metadata.get("component_sections"):
            continue
        key = f"{prefix}{field.name}"
        meta = {**(inherited or {}), **field.metadata}
        if isinstance(field.type, type) and attrs.has(field.type):
            yield from leaf_fields(field.type, key + ".", {"pending": meta["pending"]} if "pending" in meta else {})
        else:
            yield key, field, meta


ALL_FIELDS = list(leaf_fields())


@pytest.mark.parametrize(("key", "field", "meta"), ALL_FIELDS, ids=[k for k, _, _ in ALL_FIELDS])
def test_every_key_is_honoured_pending_or_refused(key, field, meta):
    statuses = [s for s in ("read_in", "pending", "unsupported") if s in field.metadata]
    assert len(statuses) <= 1 and (statuses or "pending" in meta), (
        f"{key}: declare exactly one of read_in=MODULE, pending=OWNER or unsupported=True in schema.py")
    if "read_in" in field.metadata and "pending" not in meta:
        source = (PACKAGE / field.metadata["read_in"]).read_text()
        assert re.search(rf"\.{field.name}\b|[\"']{field.name}[\"']", source), (
            f"{key}: schema.py says {field.metadata['read_in']} reads it, but that file never does")


UNSUPPORTED = [(k, f) for k, f, m in ALL_FIELDS if m.get("unsupported")]


@pytest.mark.parametrize(("key", "field"), UNSUPPORTED, ids=[k for k, _ in UNSUPPORTED])
def test_unsupported_keys_are_refused_when_set(plugin_manager, key, field):
    value = {bool: "true", int: "2", str: "other"}.get(field.type, "2")
    if field.type is bool:
        value = "false" if field.default else "true"
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: not supported yet"):
        resolve_config(RunArgs(overrides=(f"{key}={value}",)), plugin_manager)
    resolve_config(RunArgs(overrides=(f"{key}={str(field.default).lower()}",)), plugin_manager)  # default: fine


def test_pending_keys_are_accepted(plugin_manager):
    config = resolve_config(RunArgs(overrides=("trainer.resume_mode=none", "generator.max_num_seqs=8",
                                               "trainer.critic.sequence_parallel_size=2")), plugin_manager)
    assert config.generator.max_num_seqs == 8 and config.trainer.resume_mode == "none"


def test_all_value_problems_are_reported_together(plugin_manager):
    with pytest.raises(ConfigError) as info:
        resolve_config(RunArgs(overrides=(
            "generator.n_samples_per_prompt=0", "generator.sampling_params.top_p=1.5",
            "trainer.resume_mode=sometimes", "trainer.policy.optimizer_config.lr=-1",
        )), plugin_manager)
    problems = info.value.problems
    assert any(p.startswith("generator.n_samples_per_prompt: must be >= 1") for p in problems)
    assert any(p.startswith("generator.sampling_params.top_p: must be in (0, 1]") for p in problems)
    assert any(p.startswith("trainer.resume_mode: must be one of none, latest, from_path") for p in problems)
    assert any(p.startswith("trainer.policy.optimizer_config.lr: must be >= 0") for p in problems)


@attrs.define(kw_only=True)
class _EstimatorSettings:
    window: int = attrs.field(default=4, validator=attrs.validators.ge(1))


@attrs.define(kw_only=True)
class _PresetSettings:
    warmup: int = 0


class _SameName:
    @hookimpl
    def register_advantage_estimators(self, register):
        register("twin", lambda **kw: None, config_cls=_EstimatorSettings)

    @hookimpl
    def register_algorithms(self, register):
        from skyrl_core.algorithms.preset import AlgorithmPreset

        register("twin", AlgorithmPreset(defaults={}), config_cls=_PresetSettings)


def test_two_kinds_with_one_name_get_separate_sections(plugin_manager, register_plugin):
    register_plugin(_SameName())
    config = resolve_config(RunArgs(algo="twin", overrides=(
        "trainer.algorithm.advantage_estimator=twin", "trainer.algorithm.estimators.twin.window=8",
        "trainer.algorithm.presets.twin.warmup=3")), plugin_manager)
    sections = config.trainer.algorithm.sections
    assert sections["advantage_estimators"]["twin"] == _EstimatorSettings(window=8)
    assert sections["algorithms"]["twin"] == _PresetSettings(warmup=3)
    shown = config_to_dict(config)["trainer"]["algorithm"]
    assert shown["estimators"]["twin"] == {"window": 8} and shown["presets"]["twin"] == {"warmup": 3}
    with pytest.raises(ConfigError, match=r"trainer\.algorithm\.estimators\.twin\.window: .*must be >= 1"):
        resolve_config(RunArgs(overrides=("trainer.algorithm.estimators.twin.window=0",)), plugin_manager)


class _Env(BaseTextEnv):
    def step(self, action):
        return BaseTextEnvStepOutput(reward=0.0, done=True)


@attrs.define(kw_only=True)
class _ClashSettings:
    x: int = 0


class _Clash:
    @hookimpl
    def register_environments(self, register):
        register("env_class", _Env, config_cls=_ClashSettings)


def test_a_section_that_would_hide_a_key_is_refused(plugin_manager, register_plugin):
    register_plugin(_Clash())
    with pytest.raises(ConfigError, match=r"environment\.env_class: environment 'env_class' .* must rename"):
        resolve_config(RunArgs(), plugin_manager)


class _Transport:
    device_types = ("cpu",)
    same_device_ok = True


class _CudaIpc(_Transport):
    device_types = ("cuda",)


class _Nccl(_Transport):
    device_types = ("cuda",)
    same_device_ok = False


def _transports(*entries):
    class Plugin:
        @hookimpl
        def register_weight_sync_backends(self, register):
            for name, cls in entries:
                register(name, cls)

    return Plugin()


@pytest.mark.parametrize(
    ("cuda", "colocated", "extra", "expected"),
    [
        (False, True, [("fake_ipc", _CudaIpc)], "gloo"),
        (True, False, [("fake_ipc", _CudaIpc)], "nccl"),
        (True, True, [("fake_ipc", _CudaIpc), ("fake_nccl", _Nccl)], "fake_ipc"),
        (True, True, [("fake_nccl", _Nccl), ("fake_cpu", _Transport)], "ray"),
    ],
)
def test_auto_weight_sync(monkeypatch, plugin_manager, register_plugin, cuda, colocated, extra, expected):
    monkeypatch.setattr(components, "_cuda_available", lambda: cuda)
    monkeypatch.setattr(sys.modules["skyrl_core.registry"], "shape_problem", lambda kind, value: None)  # fakes
    register_plugin(_transports(*extra))
    config = SkyRLConfig()
    config.trainer.placement.colocate_all = colocated
    config.generator.backend, config.trainer.strategy = "hf", "ddp"
    choices = components.resolve_auto(config, plugin_manager)
    assert config.generator.weight_sync_backend == expected
    assert choices[-1].key == "generator.weight_sync_backend" and choices[-1].reason
