"""``skyrl-env-gsm8k`` as an installed plugin: entry-point discovery and a light plugin module."""

from __future__ import annotations

import subprocess
import sys

from skyrl_core.plugins import PluginManager
from skyrl_env_gsm8k.dataset import GSM8KDataConfig, Gsm8kDatasetBuilder
from skyrl_env_gsm8k.env import Gsm8kEnv, GSM8KEnvConfig


def test_entry_point_discovery():
    pm = PluginManager()
    assert pm.registry("environments")["gsm8k"] is Gsm8kEnv
    env_entry = pm.registry("environments").entry("gsm8k")
    assert env_entry.config_cls is GSM8KEnvConfig
    assert env_entry.plugin.distribution == "skyrl-env-gsm8k"
    assert env_entry.plugin.entry_point == "skyrl:gsm8k -> skyrl_env_gsm8k.plugin"
    data_entry = pm.registry("datasets").entry("gsm8k")
    assert isinstance(data_entry.obj, Gsm8kDatasetBuilder)
    assert data_entry.config_cls is GSM8KDataConfig
    assert pm.hooks_of(env_entry.plugin.name) == ["register_datasets", "register_environments"]


def test_plugin_import_is_light():
    code = (
        "import sys, skyrl_env_gsm8k.plugin\n"
        "heavy = [m for m in ('torch', 'datasets', 'transformers', 'pyarrow', 'ray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
