"""Writing the policy as a Hugging Face model folder: from a running worker group (``trainer.hf_save_interval``)
or from a checkpoint (``skyrl export``).

The folder holds the weights as safetensors files (one per streamed chunk, with ``model.safetensors.index.json``
when there are several), the model config, the generation config and the tokenizer with its chat template, copied
from the model the run started from, so ``AutoModelForCausalLM.from_pretrained(folder)`` loads it and ``skyrl eval
--model folder`` evaluates it. Weights are written chunk by chunk: the writer never holds the whole model.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from skyrl_core.errors import UserError


def write_hf_folder(chunks: Iterable[Any], base_model_path: str, output_dir: str | Path) -> Path:
    """Write ``chunks`` (:class:`~skyrl_core.weight_sync.base.WeightChunk`) plus the base model's config,
    generation config and tokenizer into ``output_dir``, atomically (a temporary folder renamed at the end)."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    out = Path(output_dir)
    tmp = out.with_name(f".tmp_{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: list[tuple[str, list[str]]] = []
    seen: set[int] = set()
    for i, chunk in enumerate(chunks):
        tensors = {}
        for name, tensor in zip(chunk.names, chunk.tensors, strict=True):
            if tensor.data_ptr() in seen and tensor.numel() > 0:  # a tied weight: stored once
                continue
            seen.add(tensor.data_ptr())
            tensors[name] = tensor.detach().contiguous().cpu()
        file = f"part-{i:05d}.safetensors"
        save_file(tensors, str(tmp / file), metadata={"format": "pt"})
        files.append((file, list(tensors)))
    _name_weight_files(tmp, files)
    AutoConfig.from_pretrained(base_model_path).save_pretrained(tmp)
    try:
        GenerationConfig.from_pretrained(base_model_path).save_pretrained(tmp)
    except OSError:  # the base model has no generation config
        pass
    AutoTokenizer.from_pretrained(base_model_path).save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def _name_weight_files(folder: Path, files: list[tuple[str, list[str]]]) -> None:
    """One file is ``model.safetensors``; several are ``model-0000i-of-0000n.safetensors`` with an index."""
    if len(files) == 1:
        os.replace(folder / files[0][0], folder / "model.safetensors")
        return
    weight_map = {}
    total = 0
    for i, (file, names) in enumerate(files, start=1):
        final = f"model-{i:05d}-of-{len(files):05d}.safetensors"
        total += (folder / file).stat().st_size
        os.replace(folder / file, folder / final)
        weight_map.update(dict.fromkeys(names, final))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def export_checkpoint(checkpoint_dir: str | Path, output_dir: str | Path, bucket_bytes: int = 1 << 30) -> Path:
    """The policy of a checkpoint as an HF folder: the run's strategy is rebuilt in this process (one rank),
    loads the checkpoint's weights and streams them out, so any strategy's checkpoint layout works."""
    import socket

    import torch
    import yaml

    from skyrl_core.config.loader import component_section, structure_config
    from skyrl_core.plugins import get_plugin_manager
    from skyrl_core.trainer.checkpoint import read_checkpoint

    point = read_checkpoint(Path(checkpoint_dir).expanduser())
    config_file = point.folder / "config.yaml"
    if not config_file.is_file():
        raise UserError(f"{config_file} is missing: the checkpoint does not say which model and strategy wrote it")
    pm = get_plugin_manager()
    config = structure_config(yaml.safe_load(config_file.read_text()), pm)
    trainer = config.trainer
    strategy_cls = pm.registry("strategies")[trainer.strategy]
    strategy = strategy_cls(config=component_section(trainer, trainer.strategy, "strategies", pm), run_config=config)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    strategy.init_distributed(rank=0, world_size=1, master_addr="127.0.0.1", master_port=port)
    strategy.build_model(trainer.policy.model.path, trainable=True, optimizer_config=trainer.policy.optimizer_config)
    strategy.load_checkpoint(str(point.folder / "policy"), load_optimizer=False)
    chunks = strategy.iter_weights(dtype=torch.float32, bucket_bytes=bucket_bytes)
    return write_hf_folder(chunks, trainer.policy.model.path, output_dir)
