"""``skyrl-fsdp`` as an installed plugin: discovery, a light plugin module, its config section and checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from skyrl_core.config.loader import structure_config
from skyrl_core.config.overrides import parse_override, set_dotted
from skyrl_core.config.sections import sections_of
from skyrl_core.config.validation import validate_config
from skyrl_core.errors import ConfigError, UserError
from skyrl_core.plugins import PluginManager
from skyrl_fsdp.config import FSDPConfig


def _config(*overrides: str):
    tree: dict = {}
    for arg in overrides:
        set_dotted(tree, *parse_override(arg))
    pm = PluginManager()
    config = structure_config(tree, pm)
    validate_config(config, pm)
    return config


def test_entry_point_registers_fsdp2_and_its_alias():
    registry = PluginManager().registry("strategies")
    for name in ("fsdp2", "fsdp"):
        entry = registry.entry(name)
        assert entry.target == "skyrl_fsdp.strategy:FSDP2Strategy"
        assert entry.config_cls is FSDPConfig
        assert entry.plugin.distribution == "skyrl-fsdp"
    assert registry["fsdp"] is registry["fsdp2"]


def test_plugin_import_is_light():
    code = ("import sys, skyrl_fsdp.plugin\n"
            "heavy = [m for m in ('torch', 'transformers', 'ray') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_section_keys_by_dotted_override():
    config = _config("trainer.strategy=fsdp2", "trainer.fsdp2.cpu_offload=true", "trainer.fsdp2.fsdp_size=4",
                     "trainer.fsdp2.reshard_after_forward=false")
    section = sections_of(config.trainer, "strategies")["fsdp2"]
    assert section == FSDPConfig(cpu_offload=True, fsdp_size=4, reshard_after_forward=False)


@pytest.mark.parametrize("value", [0, -2])
def test_invalid_fsdp_size_is_refused(value):
    with pytest.raises(ConfigError, match="fsdp_size"):
        _config(f"trainer.fsdp2.fsdp_size={value}")


def test_fsdp_size_must_divide_the_world_size():
    from skyrl_fsdp.sharding import device_mesh

    with pytest.raises(UserError, match=r"trainer.fsdp2.fsdp_size=3 does not divide the 4 ranks"):
        device_mesh(torch.device("cpu"), 4, 3, "fsdp2")
