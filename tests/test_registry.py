"""Registries and the plugin manager in process: duplicates, unknown names, misspelt hooks, plain-file plugins."""

from __future__ import annotations

import sys

import pluggy
import pytest

from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput, hookimpl, registry
from skyrl_core.errors import DuplicateNameError, UnknownNameError, UserError
from skyrl_core.plugins import PluginManager


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
        sys.modules.pop("my_algo_for_registry_test", None)
    fresh = PluginManager(entry_points=False)  # a manager without the file: the decorated names are not global
    assert "zero_adv" not in fresh.registry("advantage_estimators")


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
            register("lazy_ok", "skyrl_core.env.base:BaseTextEnv")
            register("lazy_broken", "skyrl_missing_module_for_tests:Env")
            register("lazy_wrong_base", "skyrl_core.env.base:BaseTextEnvStepOutput")

    register_plugin(Plugin(), distribution="lazy-dist")
    envs = plugin_manager.registry("environments")
    assert envs.entry("lazy_ok").is_lazy and envs["lazy_ok"] is BaseTextEnv
    with pytest.raises(PluginLoadError, match="lazy_broken.*lazy-dist.*skyrl_missing_module_for_tests"):
        envs["lazy_broken"]
    with pytest.raises(PluginLoadError, match="lazy_wrong_base.*lazy-dist.*not a subclass of .*BaseTextEnv"):
        envs["lazy_wrong_base"]


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


def test_kind_records_drive_hooks_labels_and_hints():
    from skyrl_core import hookspecs
    from skyrl_core.registry import label_of

    hooks = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert hooks == set(hookspecs.REGISTRATION_HOOKS) == {k.hook for k in hookspecs.KIND_RECORDS}
    assert label_of("weight_sync_backends") == "weight-sync backend"
    kinds = hookspecs.KIND_BY_NAME
    assert kinds["environments"].install_hint("foo_bar") == "pip install skyrl-env-foo-bar"
    assert kinds["algorithms"].install_hint("dapo") == "pip install skyrl-algo-dapo"
    assert kinds["strategies"].install_hint("fsdp2") == "pip install skyrl-fsdp"
    assert kinds["inference_backends"].install_hint("sglang") == "pip install skyrl-sglang"
    assert kinds["inference_backends"].install_hint("trt") == "pip install skyrl-vllm or skyrl-sglang"
    assert kinds["loggers"].install_hint("mlflow") is None


def test_every_kind_record_matches_its_hook_docstring():
    """Each hook's docstring names the section path and the selecting key its record declares."""
    from skyrl_core import hookspecs

    for kind in hookspecs.KIND_RECORDS:
        doc = " ".join(getattr(hookspecs, kind.hook).__doc__.split())
        assert f"``{kind.section_path('<name>')}``" in doc, (kind.name, kind.section_path("<name>"))
        if kind.selector:
            assert kind.selector in doc, (kind.name, kind.selector)


def test_unknown_names_hint_by_naming_convention(plugin_manager):
    with pytest.raises(UnknownNameError, match=r"pip install skyrl-env-foo\b"):
        plugin_manager.registry("environments")["foo"]
    with pytest.raises(UnknownNameError, match=r"pip install skyrl-algo-foo\b"):
        plugin_manager.registry("algorithms")["foo"]


def test_algo_without_package_exits_2_naming_the_package(skyrl_cli):
    result = skyrl_cli("config", "show", "--algo", "dapo")
    assert result.returncode == 2, result.stderr
    assert "skyrl-algo-dapo" in result.stderr and "Traceback" not in result.stderr


DECORATED_MODULE = '''
from skyrl_core.algorithms.decorators import register_policy_loss


@register_policy_loss("doubled_pg")
def doubled(*, log_probs, advantages, **kw):
    """Twice the plain policy gradient."""
    return -2 * advantages * log_probs, {}
'''


def test_decorators_register_through_the_module_hook(plugin_manager):
    import types

    from skyrl_core.registry import PluginInfo

    module = types.ModuleType("decorated_losses_for_registry_test")
    sys.modules[module.__name__] = module
    try:
        exec(DECORATED_MODULE, module.__dict__)  # noqa: S102 - a module body defined in the test
        assert "doubled_pg" not in plugin_manager.registry("policy_losses")  # not a plugin until registered
        plugin_manager.add(module, PluginInfo("decorated", "decorated-dist", "1", "test:decorated"))
        entry = plugin_manager.registry("policy_losses").entry("doubled_pg")
        assert entry.obj is module.doubled and entry.plugin.distribution == "decorated-dist"
        assert entry.description == "Twice the plain policy gradient."
    finally:
        plugin_manager.remove("decorated")
        sys.modules.pop(module.__name__, None)


def _import_graph() -> dict[str, set[str]]:
    """Module -> skyrl_core modules it imports anywhere (function-level imports included)."""
    import ast
    from pathlib import Path

    import skyrl_core

    root = Path(skyrl_core.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                edges |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                          for a in node.names}
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def test_no_import_cycles_in_skyrl_core():
    graph = _import_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += graph.get(node, ())
        return False

    assert "skyrl_core.plugins" in graph and "skyrl_core.algorithms.decorators" in graph
    assert not reaches("skyrl_core.plugins", "skyrl_core.algorithms.decorators")
    cyclic = [m for m in graph if any(reaches(n, m) for n in graph[m])]
    assert not cyclic, f"modules on an import cycle: {sorted(cyclic)}"


@pytest.mark.parametrize("module", ["skyrl_core.algorithms.decorators", "skyrl_core.plugins",
                                    "skyrl_core.config.validation", "skyrl_core.config.loader"])
def test_each_module_imports_alone(module):
    import subprocess

    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
