"""Tests of skyrl_core.testing.tiny_model: the offline random-weight checkpoints other tests run on."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from skyrl_core.errors import UserError
from skyrl_core.testing.tiny_model import make_tiny_model

ARCHS = ["qwen2", "llama"]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"}]


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request, tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp(request.param) / "model", arch=request.param)


def _param_count(path) -> int:
    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())


def test_writes_a_complete_checkpoint(tiny):
    names = {p.name for p in tiny.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= names


def test_tiny_model_reloads_with_auto_classes(tiny):
    model = AutoModelForCausalLM.from_pretrained(tiny)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    assert model.dtype == torch.float32
    assert model.config.vocab_size >= len(tokenizer)
    assert not model.config.tie_word_embeddings
    assert model.config.max_position_embeddings == 2048
    assert 100_000 <= sum(p.numel() for p in model.parameters()) <= 400_000


@pytest.mark.parametrize("arch", ARCHS)
def test_small_size_has_about_ten_million_parameters(tmp_path, arch):
    path = make_tiny_model(tmp_path, arch=arch, size="small")
    assert 5_000_000 <= _param_count(path) <= 15_000_000
    assert len(AutoTokenizer.from_pretrained(path)) > 1500


def test_special_tokens_match_between_tokenizer_and_model(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == im_end
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id == pad
    assert tokenizer.padding_side == "left"
    assert model.config.eos_token_id == im_end and model.config.pad_token_id == pad
    assert model.generation_config.eos_token_id == im_end and model.generation_config.pad_token_id == pad


def test_chat_template_is_chatml(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    )
    without_prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert without_prompt == text.removesuffix("<|im_start|>assistant\n")


def test_tokenized_chat_template_matches_encoding_the_text(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    encoded = tokenizer.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True)
    # transformers 5 returns a BatchEncoding here; transformers 4 returned the list of ids.
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert ids == tokenizer.encode(text, add_special_tokens=False)
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(tokenizer.eos_token_id) == 2


ROUND_TRIP_TEXTS = ["What is 12 * 34? The answer is \\boxed{408}.", "  tabs\tand\nnewlines, café ☕ 日本"]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_encode_decode_round_trips(tiny, text):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_digits_are_single_tokens(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    assert tokenizer.tokenize("408") == ["4", "0", "8"]


def test_forward_on_a_left_padded_batch(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    batch = tokenizer(["What is 1 + 1?", "Hi"], return_tensors="pt", padding=True)
    assert batch["input_ids"][1, 0] == tokenizer.pad_token_id
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (*batch["input_ids"].shape, model.config.vocab_size)
    assert torch.isfinite(logits).all()


def test_same_seed_gives_identical_files(tmp_path):
    first = make_tiny_model(tmp_path / "a", seed=3)
    second = make_tiny_model(tmp_path / "b", seed=3)
    for name in ["model.safetensors", "tokenizer.json", "config.json"]:
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_different_seeds_give_different_weights(tmp_path):
    first = load_file(make_tiny_model(tmp_path / "a", seed=0) / "model.safetensors")
    second = load_file(make_tiny_model(tmp_path / "b", seed=1) / "model.safetensors")
    assert first.keys() == second.keys()
    assert not torch.equal(first["model.embed_tokens.weight"], second["model.embed_tokens.weight"])


def test_global_rng_is_left_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_model(tmp_path, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_creates_missing_parent_folders(tmp_path):
    path = make_tiny_model(str(tmp_path / "x" / "y"))
    assert (path / "model.safetensors").is_file()


@pytest.mark.parametrize(("kwargs", "listed"), [({"arch": "gpt2"}, "llama, qwen2"), ({"size": "huge"}, "small, tiny")])
def test_bad_choices_raise_user_error(tmp_path, kwargs, listed):
    with pytest.raises(UserError, match=listed):
        make_tiny_model(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())
