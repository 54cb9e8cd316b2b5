"""``skyrl model tiny``: a tiny random HF model + tokenizer for offline smoke tests."""

from __future__ import annotations

import click

from skyrl_core.cli.common import console


@click.group()
def model() -> None:
    """Model utilities."""


@model.command("tiny")
@click.option("--output-dir", required=True, type=click.Path(file_okay=False), help="Folder to write the model to.")
@click.option("--arch", type=click.Choice(["qwen2", "llama"]), default="qwen2", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=click.Choice(["tiny", "small"]), default="tiny", show_default=True,
              help="tiny: about 0.2M parameters; small: about 10M.")
def tiny(output_dir: str, arch: str, seed: int, size: str) -> None:
    """Write a tiny random-weight causal LM with a byte-level BPE tokenizer and a ChatML chat template."""
    from skyrl_core.testing.tiny_model import make_tiny_model

    path = make_tiny_model(output_dir, arch=arch, seed=seed, size=size)
    console.print(f"wrote a {size} {arch} model to {path}", highlight=False)


@model.command("import-gguf")
@click.argument("source", metavar="FILE_OR_FOLDER")
@click.option("--output-dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write the HF model to (missing or empty).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True,
              help="Dtype of the dequantised weights.")
def import_gguf(source: str, output_dir: str, dtype: str) -> None:
    """Convert a GGUF model (llama.cpp, ollama, llm plugins) into a plain HF model folder.

    FILE_OR_FOLDER is a .gguf file, or a folder holding exactly one (searched recursively). The folder written
    holds config.json, model.safetensors (dequantised weights), generation_config.json and the tokenizer with its
    chat template; use it as trainer.policy.model.path. Needs the gguf package (pip install 'skyrl-core[gguf]').
    """
    from skyrl_core.gguf_import import import_gguf as convert

    path = convert(source, output_dir, dtype=dtype)
    console.print(f"wrote an HF model folder to {path}", highlight=False)
