"""Shared test set-up. skyrl's own pytest plugin (``skyrl_core.testing``) provides the plugin/Ray/model fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SKYRL = str(Path(sys.executable).parent / "skyrl")


def run_skyrl(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed `skyrl` command; ``env`` entries are added to (or with None removed from) os.environ."""
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run([SKYRL, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def skyrl_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_skyrl


@pytest.fixture(scope="session")
def installed_fixture_plugins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test plugin distributions under tests/fixtures, each pip-installed into its own target folder."""
    targets: dict[str, Path] = {}
    for project in sorted(FIXTURES.glob("skyrl-*")):
        target = tmp_path_factory.mktemp(project.name)
        build = tmp_path_factory.mktemp(project.name + "-src")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(project)],
            check=True, capture_output=True, text=True, cwd=build,
        )
        targets[project.name] = target
    return targets
