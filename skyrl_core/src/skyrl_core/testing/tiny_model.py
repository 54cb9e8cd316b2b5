"""Tiny random-weight causal LMs for tests, built offline.

Tests of the trainer, the generators and the inference backends need a real Hugging Face checkpoint (config,
weights, tokenizer with a chat template) but cannot download one. :func:`make_tiny_model` writes such a folder in
a few seconds: a byte-level BPE tokenizer trained on a small built-in corpus, and a Qwen2 or Llama model with
random weights. Both are deterministic: the same ``seed`` gives byte-identical ``model.safetensors`` and the same
``tokenizer.json`` every time. The folder loads with ``AutoModelForCausalLM`` and ``AutoTokenizer``.

The tokenizer mimics Qwen2's: ``<|endoftext|>`` pads, ``<|im_end|>`` ends a turn (it is the EOS token), each
digit is its own token, padding is on the left, and the chat template is plain ChatML without a default system
message.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from skyrl_core.errors import UserError

__all__ = ["make_tiny_model"]

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END]

#: ChatML: ``<|im_start|>{role}\n{content}<|im_end|>\n`` per message, then ``<|im_start|>assistant\n`` on request.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

ARCHS = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}

#: Per size: the vocabulary the BPE trainer aims at, and the transformer's shape.
SIZES = {
    "tiny": {
        "vocab_size": 512,
        "shape": dict(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=256
        ),
    },
    "small": {
        "vocab_size": 2048,
        "shape": dict(
            hidden_size=256, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2, intermediate_size=1280
        ),
    },
}

MAX_POSITIONS = 2048

_PROSE = """\
The morning was cold and bright, and the river below the old stone bridge ran fast after a week of rain.
A teacher walked to the village school with a basket of books, a bag of apples and a small wooden box of chalk.
She liked to start each lesson with a question: how many apples are left if you share twelve among four friends?
The children counted on their fingers, wrote numbers on slates, and argued about whether zero is even or odd.
Later they read a story about a sailor who crossed the northern sea in a boat with a torn sail and a broken oar.
He measured the wind, checked the stars at night, and kept a careful record of every day in a leather journal.
When the storm finally passed, the island appeared on the horizon, green and quiet, with white birds above it.
In the afternoon the class planted beans in the garden, watered the rows, and built a fence against the rabbits.
Some students preferred music, some preferred history, and a few only wanted to solve harder puzzles each week.
The library kept maps, dictionaries, and thick volumes on chemistry, physics, biology, and the history of Rome.
Please think step by step, explain your reasoning clearly, and put the final answer inside a box at the end.
You are a helpful assistant. The user asks a question, and the assistant answers it as well as it can.
If a problem seems difficult, first try a simpler version, then check the result against the original question.
Every good answer is short, correct, and easy to verify; a wrong answer with confident words is still wrong.
"""

_QUESTIONS = (
    ("What is {a} + {b}?", lambda a, b: a + b),
    ("What is {a} - {b}?", lambda a, b: a - b),
    ("What is {a} * {b}?", lambda a, b: a * b),
    ("Compute the sum of {a} and {b}.", lambda a, b: a + b),
    ("A farmer has {a} sheep and buys {b} more. How many sheep does the farmer have now?", lambda a, b: a + b),
    ("A train travels {a} miles per hour for {b} hours. How far does it go?", lambda a, b: a * b),
)

#: Word banks that give the larger vocabulary of the ``small`` tokenizer something to learn.
_NOUNS = """
apple garden river mountain window teacher student doctor farmer sailor engine bridge castle forest desert island
village city market kitchen table chair pencil notebook letter envelope candle lantern blanket pillow mirror clock
hammer ladder basket bucket bottle kettle spoon plate carpet curtain shelf drawer cabinet library museum theater
hospital station airport harbor tunnel highway meadow valley canyon glacier volcano ocean lake pond stream waterfall
cloud thunder lightning rainbow shadow sunrise sunset winter summer autumn spring season holiday birthday wedding
festival concert painting sculpture poem novel chapter sentence paragraph language grammar science history geometry
algebra fraction decimal equation triangle circle square rectangle diameter radius angle volume surface distance
weight height length minute second hour morning evening midnight calendar century machine computer keyboard screen
printer battery signal network message picture camera telescope microscope magnet crystal diamond silver copper iron
wool cotton leather paper glass stone brick wood rope chain wheel wagon bicycle tractor helicopter rocket planet comet
horse rabbit squirrel eagle sparrow turtle dolphin whale salmon spider butterfly beetle elephant giraffe lion tiger
bread cheese butter honey soup salad pepper onion potato tomato carrot cabbage lemon orange banana cherry grape
""".split()
_VERBS = """
carried painted measured counted climbed crossed repaired opened closed pushed pulled lifted dropped followed
visited watched noticed remembered forgot explained described discovered invented improved collected delivered
borrowed returned purchased ordered cooked baked washed cleaned folded wrapped filled emptied poured mixed stirred
planted harvested gathered scattered divided multiplied subtracted added compared estimated calculated checked
recorded printed signed copied translated answered questioned studied practiced finished started organized arranged
decorated protected rescued guided welcomed thanked praised ignored avoided accepted refused offered promised
""".split()
_ADJECTIVES = """
ancient modern gentle curious careful clever brave quiet noisy bright dark heavy light narrow wide shallow deep
smooth rough sharp soft warm frozen golden purple yellow crimson silent hungry thirsty sleepy patient honest
friendly famous ordinary strange simple complex tiny enormous gigantic delicate fragile sturdy rusty shiny dusty
fresh stale sweet bitter salty sour spicy crowded empty distant nearby hidden visible secret public private
""".split()


def _arithmetic_lines() -> list[str]:
    """Questions with ``\\boxed{}`` answers, for a spread of operands."""
    lines = []
    for i, (question, answer) in enumerate(_QUESTIONS):
        for a in range(3 + i, 100, 7):
            b = (a * 37 + i * 11) % 89 + 2
            lines.append(f"{question.format(a=a, b=b)} The answer is \\boxed{{{answer(a, b)}}}.")
    return lines


def _word_lines() -> list[str]:
    """Two sentences per noun that cycle through the word banks, so every word occurs."""
    lines = []
    for i, noun in enumerate(_NOUNS):
        adj, verb, other = _ADJECTIVES[i % len(_ADJECTIVES)], _VERBS[i % len(_VERBS)], _NOUNS[(i * 5 + 3) % len(_NOUNS)]
        lines.append(f"The {adj} {noun} {verb} the {_ADJECTIVES[i * 7 % len(_ADJECTIVES)]} {other}.")
        lines.append(f"{_ADJECTIVES[i * 3 % len(_ADJECTIVES)].capitalize()} {noun}s were {verb} by the {other}.")
    return lines


def _corpus() -> list[str]:
    """The fixed training text of the tokenizer."""
    return _PROSE.splitlines() + _arithmetic_lines() + _word_lines()


def _train_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on :func:`_corpus`, wrapped for transformers."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        padding_side="left",
        model_max_length=MAX_POSITIONS,
        chat_template=CHAT_TEMPLATE,
    )


def _build_model(arch: str, size: str, tokenizer: PreTrainedTokenizerFast, seed: int) -> PreTrainedModel:
    """A randomly initialised model whose vocabulary and special ids match ``tokenizer``."""
    config_cls, model_cls = ARCHS[arch]
    # As in Qwen2's config, <|endoftext|> is also the BOS id; the tokenizer itself never adds a BOS token.
    special_ids = dict(
        bos_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    config = config_cls(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        dtype="float32",
        **SIZES[size]["shape"],
        **special_ids,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.generation_config = GenerationConfig(**special_ids)
    return model


def _check_choice(what: str, value: str, valid: Mapping[str, object]) -> None:
    """Raise a :class:`UserError` naming the valid keys unless ``value`` is one of them."""
    if value not in valid:
        raise UserError(f"unknown tiny-model {what} {value!r}; valid values: {', '.join(sorted(valid))}")


def make_tiny_model(
    path: str | os.PathLike[str], arch: str = "qwen2", seed: int = 0, size: str = "tiny"
) -> pathlib.Path:
    """Write a random-weight causal LM and its tokenizer into ``path`` (created if missing) and return it.

    ``arch`` is ``"qwen2"`` or ``"llama"``; ``size`` is ``"tiny"`` (about 0.2M parameters) or ``"small"`` (about
    10M). The same ``seed`` always gives the same files; the global torch RNG is left untouched.
    """
    _check_choice("arch", arch, ARCHS)
    _check_choice("size", size, SIZES)
    out = pathlib.Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(SIZES[size]["vocab_size"])
    model = _build_model(arch, size, tokenizer, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
