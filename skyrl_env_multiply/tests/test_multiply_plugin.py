"""``skyrl-env-multiply`` as an installed plugin: entry-point discovery and a light plugin module."""

from __future__ import annotations

import subprocess
import sys

from skyrl_core.plugins import PluginManager
from skyrl_env_multiply.dataset import MultiplyDataConfig, MultiplyDatasetBuilder
from skyrl_env_multiply.env import MultiplyEnv, MultiplyEnvConfig


def test_entry_point_discovery():
    pm = PluginManager()
    assert pm.registry("environments")["multiply"] is MultiplyEnv
    env_entry = pm.registry("environments").entry("multiply")
    assert env_entry.config_cls is MultiplyEnvConfig
    assert env_entry.plugin.distribution == "skyrl-env-multiply"
    assert env_entry.plugin.entry_point == "skyrl:multiply -> skyrl_env_multiply.plugin"
    data_entry = pm.registry("datasets").entry("multiply")
    assert isinstance(data_entry.obj, MultiplyDatasetBuilder)
    assert data_entry.config_cls is MultiplyDataConfig
    assert pm.hooks_of(env_entry.plugin.name) == ["register_datasets", "register_environments"]


def test_plugin_import_is_light():
    code = (
        "import sys, skyrl_env_multiply.plugin\n"
        "heavy = [m for m in ('torch', 'datasets', 'transformers', 'pyarrow', 'ray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
