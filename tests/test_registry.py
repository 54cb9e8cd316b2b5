"""Registries and the plugin manager in process: duplicates, unknown names, misspelt hooks, plain-file plugins."""

from __future__ import annotations

import sys

import pluggy
import pytest

from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput, hookimpl, registry
from skyrl_core.errors import DuplicateNameError, UnknownNameError, UserError


class _Env(BaseTextEnv):
    def step(self, action):
        return BaseTextEnvStepOutput(reward=1.0, done=True)


def _env_plugin(name):
    class Plugin:
        @hookimpl
        def register_environments(self, register):
            register(name, _Env, description=f"{name} env")

    return Plugin()


def test_public_registry_resolves_registered_env(plugin_manager, register_plugin):
    register_plugin(_env_plugin("alpha"))
    assert registry("environments")["alpha"] is _Env
    assert "alpha" in registry("environments")
    entry = registry("environments").entry("alpha")
    assert entry.plugin.distribution == "test-plugin" and entry.description == "alpha env"


def test_duplicate_names_are_an_error_naming_both(plugin_manager, register_plugin):
    register_plugin(_env_plugin("alpha"), distribution="dist-one")
    register_plugin(_env_plugin("alpha"), distribution="dist-two")
    with pytest.raises(DuplicateNameError) as info:
        plugin_manager.registry("environments")
    assert "dist-one" in str(info.value) and "dist-two" in str(info.value)


def test_unknown_name_suggests_and_lists(plugin_manager, register_plugin):
    register_plugin(_env_plugin("zz_wordle"))
    register_plugin(_env_plugin("zz_sudoku"))
    with pytest.raises(UnknownNameError) as info:
        plugin_manager.registry("environments")["zz_wordel"]
    message = str(info.value)
    assert "did you mean 'zz_wordle'" in message and "Available: " in message
    assert "zz_sudoku, zz_wordle" in message


def test_misspelt_hook_fails_loudly(plugin_manager, register_plugin):
    class Misspelt:
        @hookimpl
        def register_enviroments(self, register):
            pass

    with pytest.raises(pluggy.PluginValidationError, match="register_enviroments"):
        register_plugin(Misspelt())


def test_config_cls_must_be_attrs(plugin_manager, register_plugin):
    class NotAttrs:
        pass

    class Plugin:
        @hookimpl
        def register_environments(self, register):
            register("beta", _Env, config_cls=NotAttrs)

    register_plugin(Plugin())
    with pytest.raises(UserError, match="not an attrs class"):
        plugin_manager.registry("environments")


def test_registry_is_read_only(plugin_manager):
    estimators = plugin_manager.registry("advantage_estimators")
    with pytest.raises(TypeError):
        estimators["x"] = None  # type: ignore[index]


def test_plain_file_plugin_with_decorators(plugin_manager, tmp_path, monkeypatch):
    plugin_file = tmp_path / "my_algo_for_registry_test.py"
    plugin_file.write_text(
        "from skyrl_core import register_advantage_estimator, register_policy_loss\n"
        "@register_advantage_estimator('zero_adv')\n"
        "def zero_adv(*, token_level_rewards, response_mask, index, values, config, **kw):\n"
        "    return token_level_rewards * 0, token_level_rewards * 0\n"
        "@register_policy_loss('plain_pg')\n"
        "def plain_pg(*, log_probs, old_log_probs, advantages, loss_mask, config, **kw):\n"
        "    return -advantages * log_probs, {}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        plugin_manager.load_file(plugin_file)
        entry = plugin_manager.registry("advantage_estimators").entry("zero_adv")
        assert entry.plugin.distribution == str(plugin_file)
        assert "plain_pg" in plugin_manager.registry("policy_losses")
    finally:
        from skyrl_core.algorithms.decorators import DECORATED

        DECORATED[:] = [d for d in DECORATED if d[3] != "my_algo_for_registry_test"]
        sys.modules.pop("my_algo_for_registry_test", None)


def test_missing_plugin_file_is_a_user_error(plugin_manager, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        plugin_manager.load_file(tmp_path / "missing.py")


def test_core_works_with_no_plugin_distributions(skyrl_cli):
    result = skyrl_cli("config", "show", "--algo", "grpo", env={"SKYRL_LOAD_PLUGINS": ""})
    assert result.returncode == 0, result.stderr
    assert "advantage_estimator: grpo" in result.stdout


def test_lazy_targets_import_on_first_use_and_report_failures(plugin_manager, register_plugin):
    from skyrl_core.errors import PluginLoadError

    class Plugin:
        @hookimpl
        def register_environments(self, register):
            register("lazy_ok", "skyrl_core.env.base:BaseTextEnvStepOutput")
            register("lazy_broken", "skyrl_missing_module_for_tests:Env")

    register_plugin(Plugin(), distribution="lazy-dist")
    envs = plugin_manager.registry("environments")
    assert envs.entry("lazy_ok").is_lazy and envs["lazy_ok"] is BaseTextEnvStepOutput
    with pytest.raises(PluginLoadError, match="lazy_broken.*lazy-dist.*skyrl_missing_module_for_tests"):
        envs["lazy_broken"]


def test_listing_plugins_and_resolving_config_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from skyrl_core.plugins import PluginManager\n"
        "from skyrl_core.config.loader import RunArgs, resolve_config\n"
        "from skyrl_core.hookspecs import KINDS\n"
        "pm = PluginManager()\n"
        "[pm.registry(kind) for kind in KINDS]\n"
        "resolve_config(RunArgs(env='multiply', algo='grpo'), pm)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
