"""``skyrl-deepspeed`` as an installed plugin: discovery, a light plugin module, its config section and the
DeepSpeed config built from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from skyrl_core.config.loader import RunArgs, resolve_config, structure_config
from skyrl_core.config.overrides import parse_override, set_dotted
from skyrl_core.config.sections import sections_of
from skyrl_core.errors import ConfigError, UserError
from skyrl_core.plugins import PluginManager
from skyrl_core.workers.train_worker import strategy_section
from skyrl_deepspeed.config import DeepSpeedConfig, engine_config, zero_stage


def test_entry_point_registers_deepspeed():
    entry = PluginManager().registry("strategies").entry("deepspeed")
    assert entry.target == "skyrl_deepspeed.strategy:DeepSpeedStrategy"
    assert entry.config_cls is DeepSpeedConfig
    assert entry.plugin.distribution == "skyrl-deepspeed"


def test_plugin_import_is_light():
    code = ("import sys, skyrl_deepspeed.plugin\n"
            "heavy = [m for m in ('torch', 'deepspeed', 'transformers', 'ray') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_deepspeed_keys_pass_through_dotted_overrides():
    tree: dict = {}
    for arg in ("trainer.strategy=deepspeed", "trainer.deepspeed.deepspeed_config.zero_optimization.stage=1",
                "trainer.deepspeed.deepspeed_config.zero_optimization.reduce_bucket_size=1000"):
        set_dotted(tree, *parse_override(arg))
    section = sections_of(structure_config(tree, PluginManager()).trainer, "strategies")["deepspeed"]
    assert section.deepspeed_config == {"zero_optimization": {"stage": 1, "reduce_bucket_size": 1000}}
    assert zero_stage(section) == 1



def test_skyrl_per_role_keys_merge_over_the_strategy_section(plugin_manager):
    """SkyRL's ``trainer.<role>.deepspeed_config`` configures that role's engine, over ``trainer.deepspeed.*``."""
    config = resolve_config(RunArgs(overrides=(
        "trainer.strategy=deepspeed", "trainer.deepspeed.deepspeed_config.zero_optimization.reduce_bucket_size=1000",
        "trainer.policy.deepspeed_config.zero_optimization.stage=1",
        "trainer.ref.deepspeed_config.zero_optimization.offload_param.device=cpu")), plugin_manager)
    policy = strategy_section(config.trainer, "policy", plugin_manager)
    assert policy.deepspeed_config == {"zero_optimization": {"reduce_bucket_size": 1000, "stage": 1}}
    assert zero_stage(policy) == 1
    ref = strategy_section(config.trainer, "ref", plugin_manager)
    assert ref.deepspeed_config == {"zero_optimization": {"reduce_bucket_size": 1000,
                                                          "offload_param": {"device": "cpu"}}}
    assert zero_stage(ref) == 3
    assert strategy_section(config.trainer, "critic", plugin_manager).deepspeed_config == {
        "zero_optimization": {"reduce_bucket_size": 1000}}
    with pytest.raises(ConfigError, match=r"trainer.policy.deepspeed_config: DeepSpeed's keys need "
                                          r"trainer.strategy=deepspeed \(it is ddp\)"):
        resolve_config(RunArgs(overrides=("trainer.strategy=ddp",
                                          "trainer.policy.deepspeed_config.zero_optimization.stage=3")),
                       plugin_manager)

def test_engine_config_adds_the_keys_skyrl_owns():
    section = DeepSpeedConfig(deepspeed_config={"zero_optimization": {"offload_optimizer": {"device": "cpu"}}})
    config = engine_config(section, bf16=True, max_grad_norm=-1.0)
    assert config["zero_optimization"] == {"offload_optimizer": {"device": "cpu"}, "stage": 3}
    assert config["zero_force_ds_cpu_optimizer"] is False  # torch AdamW steps the offloaded partition
    assert config["gradient_clipping"] == 0.0 and config["bf16"] == {"enabled": True}
    assert config["train_micro_batch_size_per_gpu"] == 1 and config["gradient_accumulation_steps"] == 1
    assert "offload_optimizer" in section.deepspeed_config["zero_optimization"]  # the section is not changed
    assert "stage" not in section.deepspeed_config["zero_optimization"]


@pytest.mark.parametrize(("key", "message"), [
    ("optimizer", "set by skyrl from trainer.<role>.optimizer_config"),
    ("gradient_clipping", "max_grad_norm"),
    ("fp16", "not supported yet"),
])
def test_owned_and_unsupported_keys_are_refused(key, message):
    with pytest.raises(UserError, match=message):
        engine_config(DeepSpeedConfig(deepspeed_config={key: {}}), bf16=False, max_grad_norm=1.0)


@pytest.mark.parametrize("stage", [0, 4, "3"])
def test_unknown_stage_is_refused(stage):
    with pytest.raises(UserError, match="zero_optimization.stage"):
        zero_stage(DeepSpeedConfig(deepspeed_config={"zero_optimization": {"stage": stage}}))


@pytest.mark.parametrize(("stage", "frozen_stage"), [(1, 0), (2, 0), (3, 3)])
def test_a_model_without_optimizer_is_partitioned_only_under_zero3(stage, frozen_stage):
    section = DeepSpeedConfig(deepspeed_config={"zero_optimization": {"stage": stage}})
    config = engine_config(section, bf16=False, max_grad_norm=1.0, trainable=False)
    assert config["zero_optimization"]["stage"] == frozen_stage
