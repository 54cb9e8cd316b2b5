"""Building a sharded HF model: the device mesh, ``fully_shard`` per decoder layer, and the sharded load.

The model is built on the meta device on every rank (no memory), sharded, then materialised empty on the target
device. Rank 0 alone reads the checkpoint (one full copy, on CPU) and ``set_model_state_dict`` with
``broadcast_from_rank0`` scatters each parameter to its owners; buffers (rotary frequencies, not part of the
checkpoint) are broadcast from rank 0's copy. So no rank ever holds the full model twice.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

from skyrl_core.errors import UserError
from skyrl_core.strategy.base import ModelHead
from skyrl_core.strategy.common import enable_activation_checkpointing, load_hf_model


def device_mesh(device: torch.device, world_size: int, fsdp_size: int, section: str) -> DeviceMesh:
    """A 1-D mesh over all ranks (``fsdp_size`` -1 or the world size), else a 2-D (replicate, shard) mesh: hybrid
    sharding, each group of ``fsdp_size`` ranks holding one sharded copy. The device type is explicit, so a CPU run
    on a machine with GPUs stays on CPU."""
    if fsdp_size in (-1, world_size):
        return init_device_mesh(device.type, (world_size,), mesh_dim_names=("shard",))
    if fsdp_size > world_size or world_size % fsdp_size:
        raise UserError(f"trainer.{section}.fsdp_size={fsdp_size} does not divide the {world_size} ranks of the "
                        f"worker group. Set it to a divisor of {world_size}, or -1 to shard over all ranks")
    return init_device_mesh(device.type, (world_size // fsdp_size, fsdp_size), mesh_dim_names=("replicate", "shard"))


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks: modules whose class HF lists in ``_no_split_modules`` (e.g. ``Qwen2DecoderLayer``)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    return [m for m in model.modules() if type(m).__name__ in names]


def build_sharded_model(model_path: str, run_config: Any, *, head: ModelHead, trainable: bool, mesh: DeviceMesh,
                        device: torch.device, config: Any) -> torch.nn.Module:
    """The HF model with ``head``, sharded over ``mesh`` and loaded from ``model_path`` (see the module doc).

    Precision: fp32 master weights; with ``trainer.bf16`` the forward and backward compute in bf16 and gradients
    are reduced in fp32 (``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)``).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification

    kwargs = dict(run_config.trainer.policy.model_config_kwargs)
    if head == "value":
        kwargs["num_labels"] = 1
    try:
        hf_config = AutoConfig.from_pretrained(model_path, **kwargs)
    except OSError as exc:
        raise UserError(f"cannot load model '{model_path}': {exc}. Set the model path to a local HF model folder "
                        "(for an offline test: skyrl model tiny --output-dir DIR)") from None
    loader = AutoModelForTokenClassification if head == "value" else AutoModelForCausalLM
    with torch.device("meta"):
        model = loader.from_config(hf_config, dtype=torch.float32)
    if trainable and run_config.trainer.gradient_checkpointing:
        enable_activation_checkpointing(model, run_config)

    bf16 = run_config.trainer.bf16
    shard_kwargs = dict(
        mesh=mesh,
        reshard_after_forward=config.reshard_after_forward,
        mp_policy=MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16
        else MixedPrecisionPolicy(),
        offload_policy=CPUOffloadPolicy(pin_memory=device.type == "cuda") if config.cpu_offload else OffloadPolicy(),
    )
    for layer in decoder_layers(model):
        fully_shard(layer, **shard_kwargs)
    fully_shard(model, **shard_kwargs)
    model.to_empty(device="cpu" if config.cpu_offload else device)
    _load_from_rank0(model, model_path, run_config, head=head, device=device)
    model.train(trainable)
    if not trainable:
        model.requires_grad_(False)
    return model


def _load_from_rank0(model: torch.nn.Module, model_path: str, run_config: Any, *, head: ModelHead,
                     device: torch.device) -> None:
    """Rank 0 loads the checkpoint once on CPU; parameters are scattered as shards, buffers are broadcast whole and
    kept on the compute ``device`` (also with CPU offload, which offloads parameters only)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    rank0 = dist.get_rank() == 0
    full = load_hf_model(model_path, run_config, trainable=False, head=head) if rank0 else None
    full_state = full.state_dict() if full is not None else {}
    set_model_state_dict(model, full_state,
                         options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=True))
    full_buffers = dict(full.named_buffers()) if full is not None else {}
    for module_name, module in model.named_modules():
        for name, buffer in list(module.named_buffers(recurse=False)):
            full_name = f"{module_name}.{name}" if module_name else name
            staged = (full_buffers[full_name].to(device) if rank0
                      else torch.empty(buffer.shape, dtype=buffer.dtype, device=device))
            dist.broadcast(staged, src=0)
            module._buffers[name] = staged
    del full, full_state, full_buffers
