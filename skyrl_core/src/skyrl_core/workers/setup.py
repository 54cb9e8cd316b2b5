"""What every worker process does first: thread count, plugins (from entry points and SKYRL_PLUGIN_FILES) and
the run config rebuilt from its plain-dict form."""

from __future__ import annotations

from typing import Any

import torch


def set_threads(num_threads: int) -> None:
    """Match torch's CPU threads to this actor's share of the cores (CPU contention is brutal on small boxes)."""
    torch.set_num_threads(max(1, int(num_threads)))


def load_worker_config(config: dict[str, Any]) -> tuple[Any, Any]:
    from skyrl_core.config.loader import structure_config
    from skyrl_core.plugins import get_plugin_manager

    pm = get_plugin_manager()
    return structure_config(config, pm), pm
