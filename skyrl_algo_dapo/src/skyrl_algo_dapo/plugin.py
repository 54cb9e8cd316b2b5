"""skyrl hook implementations of ``skyrl-algo-dapo`` (entry point ``skyrl: dapo``).

The preset is registered as a ``"module:Attribute"`` string: its batch hooks import torch, which ``skyrl plugins``
must not. The config class imports only ``attrs``.
"""

from __future__ import annotations

from skyrl_algo_dapo.config import DapoConfig
from skyrl_core import hookimpl

DESCRIPTION = "DAPO: clip-higher, token-level loss, dynamic sampling, overlong shaping (Yu et al. 2025)"


@hookimpl
def register_algorithms(register):
    register("dapo", "skyrl_algo_dapo.preset:DAPO", config_cls=DapoConfig, description=DESCRIPTION)
