"""Starting or joining Ray, with what every worker needs to find the same plugins as the driver."""

from __future__ import annotations

import logging
import os
from typing import Any

VERBOSE_ENV = "SKYRL_VERBOSE"
#: Environment variables passed on to every Ray worker.
FORWARDED_ENV = (
    "SKYRL_PLUGIN_FILES",
    "SKYRL_PLUGIN_SOURCES",
    "SKYRL_LOAD_PLUGINS",
    "SKYRL_STRICT_PLUGINS",
    "SKYRL_TRACE_PLUGINS",
    "WANDB_MODE",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
)


def verbose() -> bool:
    """``skyrl run --verbose`` (``SKYRL_VERBOSE=1``): the workers' own output shown live on the console."""
    return os.environ.get(VERBOSE_ENV) == "1"


def worker_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not verbose():  # no "Loading weights" progress bar from every actor
        env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return env


def init_ray(address: str | None = None, num_cpus: int | None = None, extra_env: dict[str, str] | None = None) -> Any:
    """Join ``address`` (or ``RAY_ADDRESS``), else start a local cluster; idempotent.

    ``extra_env`` is added to every worker's environment (the test kit passes the test process's ``sys.path`` as
    ``PYTHONPATH`` so actors defined in test modules import on workers).
    """
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {
        "runtime_env": {"env_vars": {**worker_env(), **(extra_env or {})}},
        # quiet by default: the workers' output goes to the run folder's logs/ (see trainer.actor_logs)
        "log_to_driver": verbose(),
        "configure_logging": False,
    }
    # Ray starts its workers at nice 15 by default: on a busy machine they then lose to every other process and a
    # step takes several times longer. The workers are the run's compute; give them the driver's priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    if address:
        ray.init(address=address, **kwargs)
    else:
        # A new local cluster turns token authentication on and prints a banner saying so at WARNING level: keep
        # the authentication, drop the banner unless --verbose
        if not verbose():
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **kwargs)
    return ray
