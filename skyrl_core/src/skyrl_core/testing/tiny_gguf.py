"""Write a Llama HF model folder as a GGUF file, offline, for tests of ``skyrl model import-gguf``.

The file follows llama.cpp's layout for the ``llama`` architecture: the hyperparameters under ``llama.*`` keys, a
byte-level BPE tokenizer (``tokenizer.ggml.model = "gpt2"``, tokens, merges, special ids, chat template) and F32
tensors under GGUF names (``blk.N.attn_q.weight``, ...). As llama.cpp's converter does, the query and key
projections are stored with their rows permuted from Hugging Face's rotary layout (the two halves of each head
split) to the interleaved one; transformers undoes this when it loads the file.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import torch

__all__ = ["write_tiny_gguf"]

#: ``tokenizer.ggml.token_type`` values: a normal token and a control (special) token.
TOKEN_NORMAL, TOKEN_CONTROL = 1, 3


def interleave_rotary_rows(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """Rows of a q/k projection in llama.cpp's order: per head, row ``2i`` is HF row ``i`` and row ``2i+1`` is HF
    row ``i + head_dim/2`` (llama.cpp ``convert_hf_to_gguf.py``'s ``permute``)."""
    rows = weight.shape[0]
    return (weight.reshape(num_heads, 2, rows // num_heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _tokenizer_fields(folder: pathlib.Path) -> tuple[list[str], list[int], list[str], dict, str]:
    """Tokens by id, their types, merges, special ids and chat template of a byte-level BPE ``tokenizer.json``."""
    tokenizer_json = json.loads((folder / "tokenizer.json").read_text())
    vocab = dict(tokenizer_json["model"]["vocab"])
    specials = {added["content"]: added["id"] for added in tokenizer_json["added_tokens"]}
    vocab.update(specials)
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    types = [TOKEN_CONTROL if token in specials else TOKEN_NORMAL for token in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer_json["model"]["merges"]]
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text() if template_file.is_file() else tokenizer_config["chat_template"]
    return tokens, types, merges, specials, template


def write_tiny_gguf(model_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> pathlib.Path:
    """Write the Llama model in ``model_dir`` (e.g. from ``make_tiny_model(arch="llama")``) as the GGUF ``path``."""
    import gguf
    from transformers import AutoConfig, AutoModelForCausalLM

    folder, path = pathlib.Path(model_dir), pathlib.Path(path)
    config = AutoConfig.from_pretrained(folder)
    if config.model_type != "llama":
        raise ValueError(f"write_tiny_gguf writes llama models only, got {config.model_type!r}")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokens, types, merges, specials, template = _tokenizer_fields(folder)
    head_dim = config.hidden_size // config.num_attention_heads
    path.parent.mkdir(parents=True, exist_ok=True)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("skyrl tiny llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_pad_token_id(config.pad_token_id)
    writer.add_chat_template(template)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        data = tensor.numpy()
        if hf_name.endswith("self_attn.q_proj.weight"):
            data = interleave_rotary_rows(data, config.num_attention_heads)
        elif hf_name.endswith("self_attn.k_proj.weight"):
            data = interleave_rotary_rows(data, config.num_key_value_heads)
        writer.add_tensor(names.get_name(hf_name, try_suffixes=(".weight", ".bias")), np.ascontiguousarray(data))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
