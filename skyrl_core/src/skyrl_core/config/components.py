"""Checking the names a run selects, and resolving ``auto`` to the best available choice.

``auto`` picks ``vllm`` / ``fsdp2`` when their plugins are installed and CUDA GPUs exist, else the embedded
``hf`` / ``ddp``. ``generator.weight_sync_backend=auto`` picks ``gloo`` without CUDA, ``nccl`` when trainer and
engines are on separate GPUs, and with ``trainer.placement.colocate_all=true`` (never two NCCL ranks on one GPU) a
registered transport that works between CUDA tensors on one device, else ``ray``. An unknown name fails naming
the package that provides it, by the naming convention of its kind (:meth:`skyrl_core.hookspecs.Kind.install_hint`).
"""

from __future__ import annotations

from typing import Any

import attrs

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.config.sections import add_selected_sections, selected_names
from skyrl_core.errors import ConfigError
from skyrl_core.hookspecs import KIND_BY_NAME, KIND_RECORDS
from skyrl_core.plugins import PluginManager

AUTO = "auto"


@attrs.frozen
class Choice:
    key: str
    value: str
    reason: str


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _auto(pm: PluginManager, kind: str, preferred: str, fallback: str, gpu: bool) -> Choice:
    record = KIND_BY_NAME[kind]
    if gpu and preferred in pm.registry(kind):
        return Choice(record.selector, preferred, f"CUDA GPUs found and '{preferred}' is installed")
    if not gpu:
        return Choice(record.selector, fallback, f"no CUDA GPU found, so the embedded '{fallback}'")
    return Choice(record.selector, fallback,
                  f"'{preferred}' is not installed ({record.install_hint(preferred)}), so '{fallback}'")


def same_device_transports(pm: PluginManager) -> list[str]:
    """Registered weight-sync transports that move CUDA tensors between a sender and receiver on one device."""
    found = []
    for entry in pm.registry("weight_sync_backends").entries():
        transport: Any = entry.obj
        if getattr(transport, "same_device_ok", False) and "cuda" in getattr(transport, "device_types", ()):
            found.append(entry.name)
    return found


def auto_weight_sync(config: SkyRLConfig, pm: PluginManager, gpu: bool) -> Choice:
    key = KIND_BY_NAME["weight_sync_backends"].selector
    if not gpu:
        return Choice(key, "gloo", "no CUDA GPU found")
    if not config.trainer.placement.colocate_all:
        return Choice(key, "nccl", "CUDA GPUs found and trainer and engines are on separate GPUs")
    candidates = same_device_transports(pm)
    if candidates:
        return Choice(key, candidates[0], f"colocated on CUDA: '{candidates[0]}' works between ranks on one GPU")
    return Choice(key, "ray", "colocated on CUDA and no same-GPU transport is installed (pip install skyrl-vllm "
                  "for cuda_ipc), so the object store")


def resolve_auto(config: SkyRLConfig, pm: PluginManager) -> list[Choice]:
    """Replace every ``auto`` by a concrete choice (in place); returns what was chosen and why."""
    gpu = _cuda_available()
    choices: list[Choice] = []
    if config.generator.backend == AUTO:
        choices.append(_auto(pm, "inference_backends", "vllm", "hf", gpu))
        config.generator.backend = choices[-1].value
    if config.trainer.strategy == AUTO:
        choices.append(_auto(pm, "strategies", "fsdp2", "ddp", gpu))
        config.trainer.strategy = choices[-1].value
    if config.generator.weight_sync_backend == AUTO:
        choices.append(auto_weight_sync(config, pm, gpu))
        config.generator.weight_sync_backend = choices[-1].value
    add_selected_sections(config, pm)
    return choices


def name_problems(config: SkyRLConfig, pm: PluginManager) -> list[str]:
    """Every selected name that no plugin registered (``auto`` is resolved later), one line each."""
    problems = []
    for kind in KIND_RECORDS:
        registry = pm.registry(kind.name)
        key = "--algo" if kind.name == "algorithms" else kind.selector
        for name in selected_names(config, kind):
            if name != AUTO and name not in registry:
                problems.append(f"{key}: {registry.unknown(name)}")
    return problems


def check_components(config: SkyRLConfig, pm: PluginManager) -> None:
    """Every selected name must be registered (after :func:`resolve_auto`)."""
    problems = name_problems(config, pm)
    if problems:
        raise ConfigError(problems)
