"""``skyrl-algo-dapo`` as an installed plugin: discovery, the preset's recipe, ``skyrl plugins``, the install hint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dapo_batches import dapo_config

from skyrl_algo_dapo.config import DapoConfig
from skyrl_core.algorithms.preset import AlgorithmPreset
from skyrl_core.plugins import PluginManager

SKYRL = str(Path(sys.executable).parent / "skyrl")


def _skyrl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SKYRL, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def test_entry_point_registers_the_preset_and_its_section():
    entry = PluginManager().registry("algorithms").entry("dapo")
    assert entry.plugin.distribution == "skyrl-algo-dapo"
    assert entry.plugin.entry_point == "skyrl:dapo -> skyrl_algo_dapo.plugin"
    assert entry.config_cls is DapoConfig
    preset = PluginManager().registry("algorithms")["dapo"]
    assert isinstance(preset, AlgorithmPreset) and preset.refill_batches
    assert [hook.__name__ for hook in preset.batch_hooks] == [
        "dynamic_sampling", "soft_overlong_punishment", "overlong_filtering"]


def test_the_recipe_is_the_papers_and_every_key_is_overridable(plugin_manager):
    config = dapo_config(plugin_manager)
    algorithm = config.trainer.algorithm
    assert (algorithm.eps_clip_low, algorithm.eps_clip_high) == (0.2, 0.28)
    assert algorithm.loss_reduction == "token_mean" and algorithm.use_kl_loss is False
    assert algorithm.advantage_estimator == "grpo" and algorithm.preset == "dapo"
    assert config.generator.sampling_params.max_generate_length == 20480
    assert algorithm.dynamic_sampling.type == "filter"
    assert algorithm.sections["algorithms"]["dapo"] == DapoConfig(
        apply_overlong_filtering=True, apply_soft_overlong_punishment=True, overlong_buffer_len=None,
        overlong_buffer_penalty_factor=1.0)
    custom = dapo_config(plugin_manager, "trainer.algorithm.eps_clip_high=0.3",
                         "trainer.algorithm.dynamic_sampling.type=replace",
                         "trainer.algorithm.presets.dapo.overlong_buffer_len=128",
                         "trainer.algorithm.presets.dapo.overlong_buffer_penalty_factor=0.5")
    section = custom.trainer.algorithm.sections["algorithms"]["dapo"]
    assert custom.trainer.algorithm.eps_clip_high == 0.3
    assert custom.trainer.algorithm.dynamic_sampling.type == "replace"
    assert (section.overlong_buffer_len, section.overlong_buffer_penalty_factor) == (128, 0.5)

def test_plugin_import_is_light():
    code = (
        "import sys, skyrl_algo_dapo.plugin\n"
        "heavy = [m for m in ('torch', 'transformers', 'ray', 'skyrl_algo_dapo.preset') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_skyrl_plugins_shows_the_preset_from_its_distribution():
    result = _skyrl("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = [p for p in json.loads(result.stdout) if p["distribution"] == "skyrl-algo-dapo"]
    assert len(rows) == 1 and rows[0]["loaded"]
    assert rows[0]["registered"] == {"algorithms": ["dapo"]}


def test_without_the_package_algo_dapo_exits_2_naming_it():
    result = _skyrl("run", "--env", "multiply", "--algo", "dapo", SKYRL_LOAD_PLUGINS="skyrl-env-multiply")
    assert result.returncode == 2, result.stderr
    assert "unknown algorithm 'dapo'" in result.stderr and "pip install skyrl-algo-dapo" in result.stderr
