"""skyrl's pytest plugin (entry point ``pytest11``), available to every plugin package's tests.

Fixtures:

- ``plugin_manager``: a fresh :class:`skyrl_core.plugins.PluginManager` (built-ins and installed entry points,
  strict loading) that is also the process-wide manager for the duration of the test.
- ``register_plugin``: ``register_plugin(obj_or_module)`` registers an object with hookimpls on that manager and
  unregisters it after the test.
- ``ray_local``: a local Ray cluster started once per test session (CPU only, fractional CPUs).
- ``tiny_model_path``: a tiny Qwen2-style model built once per session with :func:`make_tiny_model`.

Marker ``gpu``: the test is skipped when CUDA is not available.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skyrl_core.plugins import PluginManager, set_plugin_manager
from skyrl_core.registry import PluginInfo

_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("SKYRL_STRICT_PLUGINS", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is false)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    manager = PluginManager()
    previous = set_plugin_manager(manager)
    try:
        yield manager
    finally:
        set_plugin_manager(previous)


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Iterator[Callable[[Any], str]]:
    added: list[str] = []

    def register(plugin: Any, distribution: str = "test-plugin") -> str:
        name = f"test-plugin-{next(_counter)}"
        plugin_manager.add(plugin, PluginInfo(name, distribution, "0", f"test:{name}"))
        added.append(name)
        return name

    try:
        yield register
    finally:
        for name in added:
            plugin_manager.remove(name)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    import sys

    import ray

    from skyrl_core.ray_utils import init_ray

    paths = [p for p in sys.path if p and os.path.isdir(p)]
    init_ray(address=None, num_cpus=int(os.environ.get("SKYRL_TEST_RAY_CPUS", "2")),
             extra_env={"PYTHONPATH": os.pathsep.join(paths)})
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skyrl_core.testing.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), arch="qwen2", seed=0)
