"""Checking the names a run selects, and resolving ``auto`` to the best available choice.

``auto`` picks ``vllm`` / ``fsdp2`` / ``nccl`` when their plugins are installed and CUDA GPUs exist, else the
embedded ``hf`` / ``ddp`` / ``gloo``. An explicit name that is not installed fails naming the package providing it.
"""

from __future__ import annotations

import attrs

from skyrl_core.config.loader import add_selected_sections
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import UnknownNameError
from skyrl_core.plugins import PluginManager

#: Names provided by skyrl's own plugin distributions, for "pip install" hints.
PROVIDERS = {
    ("inference_backends", "vllm"): "skyrl-vllm",
    ("inference_backends", "sglang"): "skyrl-sglang",
    ("strategies", "fsdp2"): "skyrl-fsdp",
    ("strategies", "fsdp"): "skyrl-fsdp",
    ("strategies", "deepspeed"): "skyrl-deepspeed",
    ("weight_sync_backends", "cuda_ipc"): "skyrl-vllm",
    ("environments", "gsm8k"): "skyrl-env-gsm8k",
    ("environments", "multiply"): "skyrl-env-multiply",
    ("algorithms", "dapo"): "skyrl-algo-dapo",
}


@attrs.frozen
class Choice:
    key: str
    value: str
    reason: str


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _auto(pm: PluginManager, kind: str, preferred: str, fallback: str, gpu: bool, key: str) -> Choice:
    if gpu and preferred in pm.registry(kind):
        return Choice(key, preferred, f"CUDA GPUs found and '{preferred}' is installed")
    if not gpu:
        return Choice(key, fallback, f"no CUDA GPU found, so the embedded '{fallback}'")
    package = PROVIDERS.get((kind, preferred), preferred)
    return Choice(key, fallback, f"'{preferred}' is not installed (pip install {package}), so '{fallback}'")


def resolve_auto(config: SkyRLConfig, pm: PluginManager) -> list[Choice]:
    """Replace every ``auto`` by a concrete choice (in place); returns what was chosen and why."""
    gpu = _cuda_available()
    choices: list[Choice] = []
    if config.generator.backend == "auto":
        choices.append(_auto(pm, "inference_backends", "vllm", "hf", gpu, "generator.backend"))
        config.generator.backend = choices[-1].value
    if config.trainer.strategy == "auto":
        choices.append(_auto(pm, "strategies", "fsdp2", "ddp", gpu, "trainer.strategy"))
        config.trainer.strategy = choices[-1].value
    if config.generator.weight_sync_backend == "auto":
        value, reason = ("nccl", "CUDA GPUs found") if gpu else ("gloo", "no CUDA GPU found")
        choices.append(Choice("generator.weight_sync_backend", value, reason))
        config.generator.weight_sync_backend = value
    add_selected_sections(config, pm)
    return choices


def check_name(pm: PluginManager, kind: str, name: str, key: str) -> None:
    registry = pm.registry(kind)
    if name in registry:
        return
    package = PROVIDERS.get((kind, name))
    if package:
        raise UnknownNameError(f"{key}={name}: '{name}' is provided by {package}, which is not installed. "
                               f"Run: pip install {package}")
    raise UnknownNameError(f"{key}: {registry.unknown(name)}")


def check_components(config: SkyRLConfig, pm: PluginManager) -> None:
    """Every selected name must be registered (after :func:`resolve_auto`)."""
    algorithm = config.trainer.algorithm
    checks = [
        ("inference_backends", config.generator.backend, "generator.backend"),
        ("generators", config.generator.name, "generator.name"),
        ("weight_sync_backends", config.generator.weight_sync_backend, "generator.weight_sync_backend"),
        ("strategies", config.trainer.strategy, "trainer.strategy"),
        ("advantage_estimators", algorithm.advantage_estimator, "trainer.algorithm.advantage_estimator"),
        ("policy_losses", algorithm.policy_loss_type, "trainer.algorithm.policy_loss_type"),
    ]
    if algorithm.preset is not None:
        checks.append(("algorithms", algorithm.preset, "--algo"))
    if config.environment.env_class is not None:
        checks.append(("environments", config.environment.env_class, "environment.env_class"))
    loggers = config.trainer.logger if isinstance(config.trainer.logger, list) else [config.trainer.logger]
    checks += [("loggers", name, "trainer.logger") for name in loggers]
    for kind, name, key in checks:
        check_name(pm, kind, name, key)
