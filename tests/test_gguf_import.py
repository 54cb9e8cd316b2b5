"""``skyrl model import-gguf``: a GGUF file written offline from a tiny Llama becomes an HF folder that generates
exactly what transformers generates from the GGUF file itself."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gguf")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from skyrl_core.cli.main import main  # noqa: E402
from skyrl_core.errors import UserError  # noqa: E402
from skyrl_core.gguf_import import find_gguf_file, import_gguf  # noqa: E402
from skyrl_core.testing.tiny_gguf import interleave_rotary_rows, write_tiny_gguf  # noqa: E402
from skyrl_core.testing.tiny_model import make_tiny_model  # noqa: E402

MESSAGES = [{"role": "system", "content": "Answer in \\boxed{}."}, {"role": "user", "content": "What is 7 * 8?"}]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    hf_dir = make_tiny_model(root / "hf", arch="llama", seed=3)
    return write_tiny_gguf(hf_dir, root / "files" / "tiny.gguf"), hf_dir


def _greedy(model, tokenizer, new_tokens=16):
    inputs = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def test_interleave_rotary_rows_by_hand():
    # one head of 4 rows: HF order [r0, r1 | r2, r3] (two halves) -> llama.cpp order [r0, r2, r1, r3]
    weight = torch.arange(8.0).reshape(4, 2).numpy()
    assert interleave_rotary_rows(weight, num_heads=1).tolist() == [[0, 1], [4, 5], [2, 3], [6, 7]]


def test_imported_folder_generates_what_the_gguf_generates(tiny_gguf, tmp_path):
    gguf_path, hf_dir = tiny_gguf
    out = import_gguf(gguf_path.parent, tmp_path / "model")  # a folder holding one .gguf file

    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= {
        p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == config["eos_token_id"]

    imported = AutoModelForCausalLM.from_pretrained(out)
    imported_tokenizer = AutoTokenizer.from_pretrained(out)
    direct = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    direct_tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    assert imported_tokenizer.chat_template == direct_tokenizer.chat_template
    assert "<|im_start|>assistant" in imported_tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, tokenize=False)

    tokens = _greedy(imported, imported_tokenizer)
    assert tokens == _greedy(direct, direct_tokenizer)
    # the F32 file is lossless: the round trip also matches the original HF model
    assert tokens == _greedy(AutoModelForCausalLM.from_pretrained(hf_dir), AutoTokenizer.from_pretrained(hf_dir))


def test_bfloat16_import(tiny_gguf, tmp_path):
    out = import_gguf(tiny_gguf[0], tmp_path / "model", dtype="bfloat16")
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16


def test_cli_errors_exit_2(tiny_gguf, tmp_path, capsys):
    cases = [
        ([str(tmp_path / "missing.gguf")], "no such GGUF file"),
        ([str(tmp_path)], "no *.gguf file"),
        ([str(tiny_gguf[1] / "config.json")], "is not a GGUF file"),
    ]
    for source, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["model", "import-gguf", *source, "--output-dir", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err.replace("\n", " ")


def test_several_gguf_files_and_a_non_empty_output_are_refused(tiny_gguf, tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (folder / name).write_bytes(tiny_gguf[0].read_bytes())
    with pytest.raises(UserError, match="several"):
        find_gguf_file(folder)
    with pytest.raises(UserError, match="not empty"):
        import_gguf(folder / "a.gguf", tiny_gguf[1])


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    import gguf

    path = tmp_path / "rwkv.gguf"
    writer = gguf.GGUFWriter(str(path), "rwkv6")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UserError, match="'rwkv6' model.*supported architectures: .*llama"):
        import_gguf(path, tmp_path / "out")


def test_missing_gguf_package_is_one_clear_error(tiny_gguf, tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else
                        real_find_spec(name, *a))
    with pytest.raises(UserError, match=r"needs the 'gguf' package.*skyrl-core\[gguf\]"):
        import_gguf(tiny_gguf[0], tmp_path / "out")
