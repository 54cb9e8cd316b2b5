"""Entry-point discovery through real pip-installed distributions (tests/fixtures), driven through the CLI."""

from __future__ import annotations

import json
import os

import pytest


def _pythonpath(*targets) -> str:
    return os.pathsep.join(str(t) for t in targets)


def test_installed_plugin_appears_and_its_env_resolves(installed_fixture_plugins, skyrl_cli):
    env = {"PYTHONPATH": _pythonpath(installed_fixture_plugins["skyrl-env-echotest"])}
    result = skyrl_cli("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    (row,) = [r for r in rows if r["distribution"] == "skyrl-env-echotest"]
    assert row["version"] == "0.2.0"
    assert row["entry_point"] == "skyrl:echotest -> skyrl_env_echotest.plugin"
    assert row["hooks"] == ["register_environments"]
    assert row["registered"] == {"environments": ["echotest"]}
    assert not any(r["builtin"] for r in rows), "built-ins are listed only with --all"

    shown = skyrl_cli("config", "show", "--env", "echotest", "environment.echotest.bonus=2.5", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "echotest:\n    bonus: 2.5" in shown.stdout

    version = skyrl_cli("--version", env=env)
    assert "skyrl-env-echotest 0.2.0" in version.stdout


def test_all_lists_builtins(skyrl_cli):
    rows = json.loads(skyrl_cli("plugins", "--json", "--all").stdout)
    registered = {}
    for row in rows:
        if row["builtin"]:
            for kind, names in row["registered"].items():
                registered.setdefault(kind, []).extend(names)
    assert {"grpo", "gae", "rloo", "reinforce++"} <= set(registered["algorithms"])
    assert {"grpo", "gae", "rloo", "reinforce++"} <= set(registered["advantage_estimators"])


def test_broken_plugin_warns_and_the_rest_keeps_working(installed_fixture_plugins, skyrl_cli):
    env = {
        "PYTHONPATH": _pythonpath(installed_fixture_plugins["skyrl-env-echotest"],
                                  installed_fixture_plugins["skyrl-env-brokentest"]),
        "SKYRL_STRICT_PLUGINS": "0",
    }
    result = skyrl_cli("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "skyrl-env-brokentest" in result.stderr and "skyrl_missing_dependency_for_tests" in result.stderr
    assert "SKYRL_LOAD_PLUGINS" in result.stderr
    rows = {r["distribution"]: r for r in json.loads(result.stdout)}
    assert rows["skyrl-env-echotest"]["registered"] == {"environments": ["echotest"]}
    assert rows["skyrl-env-brokentest"]["loaded"] is False

    # A run that needs the broken plugin's name fails, and says why.
    needed = skyrl_cli("run", "--env", "brokentest", env=env)
    assert needed.returncode == 2
    assert "unknown environment 'brokentest'" in needed.stderr and "skyrl-env-brokentest" in needed.stderr
    assert "Traceback" not in needed.stderr


def test_broken_plugin_is_an_error_when_strict(installed_fixture_plugins, skyrl_cli):
    env = {"PYTHONPATH": _pythonpath(installed_fixture_plugins["skyrl-env-brokentest"]), "SKYRL_STRICT_PLUGINS": "1"}
    result = skyrl_cli("plugins", "--json", env=env)
    assert result.returncode == 2
    assert "skyrl-env-brokentest" in result.stderr and "failed to import" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_plugins_allowlist(installed_fixture_plugins, skyrl_cli):
    both = _pythonpath(installed_fixture_plugins["skyrl-env-echotest"],
                       installed_fixture_plugins["skyrl-env-brokentest"])
    none = skyrl_cli("plugins", "--json", env={"PYTHONPATH": both, "SKYRL_LOAD_PLUGINS": ""})
    assert none.returncode == 0 and json.loads(none.stdout) == []
    only = skyrl_cli("plugins", "--json", env={"PYTHONPATH": both, "SKYRL_LOAD_PLUGINS": "skyrl-env-echotest"})
    assert only.returncode == 0, only.stderr
    assert [r["distribution"] for r in json.loads(only.stdout)] == ["skyrl-env-echotest"]


def test_duplicate_names_name_both_distributions(installed_fixture_plugins, skyrl_cli):
    env = {"PYTHONPATH": _pythonpath(installed_fixture_plugins["skyrl-env-echotest"],
                                     installed_fixture_plugins["skyrl-env-dupetest"])}
    result = skyrl_cli("config", "show", "--env", "echotest", env=env)
    assert result.returncode == 2
    assert "skyrl-env-echotest 0.2.0" in result.stderr and "skyrl-env-dupetest 0.3.0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["echotset", "echo"])
def test_unknown_env_suggests(installed_fixture_plugins, skyrl_cli, name):
    env = {"PYTHONPATH": _pythonpath(installed_fixture_plugins["skyrl-env-echotest"])}
    result = skyrl_cli("config", "show", "--env", name, env=env)
    assert result.returncode == 2
    assert "did you mean 'echotest'" in result.stderr and "Available: echotest" in result.stderr


def test_trace_plugins_prints_hook_calls(installed_fixture_plugins, skyrl_cli):
    env = {"PYTHONPATH": _pythonpath(installed_fixture_plugins["skyrl-env-echotest"]), "SKYRL_TRACE_PLUGINS": "1"}
    result = skyrl_cli("plugins", "--json", env=env)
    assert result.returncode == 0
    assert "[skyrl trace] register_environments" in result.stderr
