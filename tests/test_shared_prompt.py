"""The shared-prompt forward: packing by hand, the same log-probs, entropies and gradients as one row per sequence,
and the cost rule that decides when to pack."""

from __future__ import annotations

import types

import pytest
import torch
from transformers import AutoModelForCausalLM

from skyrl_core.testing.tiny_model import make_tiny_model
from skyrl_core.workers.logprobs import response_logprobs
from skyrl_core.workers.shared_prompt import ModelShape, plan_shared_prompts

#: every pair of tokens costs nothing next to a token: packing always wins when a prompt repeats
FREE_ATTENTION = ModelShape(linear_flops_per_token=1.0, attention_flops_per_pair=0.0, mask_kind="bool")


def test_layout_by_hand():
    # rows 0 and 2 share the prompt [7, 8] (row 0 padded on the left like row 2), row 1 has its own
    sequences = torch.tensor([[0, 7, 8, 21, 22], [5, 6, 9, 31, 0], [0, 7, 8, 41, 42]])
    attention = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 0], [0, 1, 1, 1, 1]])
    layout = plan_shared_prompts(sequences, attention, 2, FREE_ATTENTION)
    assert layout is not None and layout.num_groups == 2 and layout.slots == 2
    shared = int(layout.group[0])
    assert int(layout.group[2]) == shared and int(layout.group[1]) != shared
    assert layout.slot.tolist() == [0, 0, 1]
    inputs = layout.model_inputs(sequences, attention, mask_kind="bool")
    # [prompt (3 columns) | response slot 1 | response slot 2]
    assert inputs["input_ids"][shared].tolist() == [0, 7, 8, 21, 22, 41, 42]
    assert inputs["input_ids"][1 - shared].tolist() == [5, 6, 9, 31, 0, 0, 0]
    # prompt positions count real tokens; each response restarts after its prompt's 2 tokens
    assert inputs["position_ids"][shared].tolist() == [0, 0, 1, 2, 3, 2, 3]
    assert inputs["position_ids"][1 - shared].tolist() == [0, 1, 2, 3, 3, 0, 0]
    assert inputs["logits_to_keep"] == 5
    mask = inputs["attention_mask"][shared, 0].int()
    expected = torch.tensor([  # query rows, key columns; the padding column 0 is seen only by itself
        [1, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0],
        [0, 1, 1, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0, 0],  # response 1 sees the prompt and itself
        [0, 1, 1, 1, 1, 0, 0],
        [0, 1, 1, 0, 0, 1, 0],  # response 2 sees the prompt, not response 1
        [0, 1, 1, 0, 0, 1, 1],
    ])
    assert torch.equal(mask, expected)
    additive = layout.model_inputs(sequences, attention, mask_kind="additive")["attention_mask"][shared, 0]
    assert torch.equal(additive == 0, expected.bool())
    assert float(additive.min()) == torch.finfo(torch.float32).min
    # kept logits (columns 2..6 of each packed sequence, flattened): the rows predicting each row's 2 tokens
    rows = layout.logit_rows(5)
    assert rows[0].tolist() == [5 * shared, 5 * shared + 1]  # the last prompt column, then its first token
    assert rows[2].tolist() == [5 * shared, 5 * shared + 3]  # the same prompt column, then slot 2's first token
    assert rows[1].tolist() == [5 * (1 - shared), 5 * (1 - shared) + 1]


def test_no_packing_when_nothing_repeats_or_it_costs_more():
    sequences = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 9], [1, 2, 3, 9, 9]])
    attention = torch.ones_like(sequences)
    # rows 0 and 2 share [1, 2, 3]: 2 sequences of 3 + 2 x 2 tokens (14) instead of 3 of 5 (15)
    assert plan_shared_prompts(sequences, attention, 2, FREE_ATTENTION) is not None
    assert plan_shared_prompts(sequences[:2], attention[:2], 2, FREE_ATTENTION) is None  # distinct prompts
    # same prompt ids but different padding are different prompts
    padded = attention.clone()
    padded[2, 0] = 0  # row 2's prompt is now [pad, 2, 3]
    assert plan_shared_prompts(sequences, padded, 2, FREE_ATTENTION) is None
    # attention as dear as a token: 14 + 2 x 7^2 (112) against 15 + 3 x 5^2 (90): one row per sequence is cheaper
    dear_attention = ModelShape(linear_flops_per_token=1.0, attention_flops_per_pair=1.0, mask_kind="bool")
    assert plan_shared_prompts(sequences, attention, 2, dear_attention) is None


def test_model_shape_from_config():
    config = types.SimpleNamespace(_attn_implementation="sdpa", hidden_size=576, num_attention_heads=9,
                                   num_key_value_heads=3, intermediate_size=1536)
    shape = ModelShape.of(config)
    # q and o: 576 x 576 each; k and v: 576 x 192 each; gate, up, down: 576 x 1536 each; 2 FLOPs a multiply-add
    assert shape.linear_flops_per_token == 2 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536)
    assert shape.attention_flops_per_pair == 4 * 576 and shape.mask_kind == "bool"
    assert ModelShape.of(types.SimpleNamespace(**{**vars(config), "_attn_implementation": "eager"})).mask_kind \
        == "additive"
    assert ModelShape.of(types.SimpleNamespace(**{**vars(config), "_attn_implementation": "flash_attention_2"})) \
        is None
    # sliding-window layers would lose their window under a custom mask: no packing
    assert ModelShape.of(types.SimpleNamespace(**vars(config), layer_types=["full_attention"] * 2)) is not None
    assert ModelShape.of(types.SimpleNamespace(**vars(config), layer_types=["full_attention", "sliding_attention"])) \
        is None
    assert ModelShape.of(types.SimpleNamespace(**vars(config), sliding_window=4096)) is None  # e.g. Mistral
    assert ModelShape.of(types.SimpleNamespace(**vars(config), sliding_window=4096, use_sliding_window=False)) \
        is not None  # e.g. Qwen2 without its window turned on


def _grouped_batch(vocab: int, groups: tuple[int, ...] = (4, 3, 1), prompt: int = 7, response: int = 6):
    gen = torch.Generator().manual_seed(3)
    rows = sum(groups)
    sequences = torch.randint(3, vocab, (rows, prompt + response), generator=gen)
    attention = torch.ones_like(sequences)
    start = 0
    for index, size in enumerate(groups):  # one prompt per group, left padding differing between groups
        sequences[start : start + size, :prompt] = sequences[start, :prompt].clone()
        attention[start : start + size, : index * 2] = 0
        start += size
    for row in range(rows):  # ragged responses, right padded
        attention[row, prompt + response - row % 3 :] = 0
    return sequences, attention, response


@pytest.mark.parametrize(("arch", "attention_kind"), [("qwen2", "sdpa"), ("qwen2", "eager"), ("llama", "sdpa")])
def test_same_logprobs_entropy_and_gradients_as_one_row_per_sequence(tmp_path, arch, attention_kind):
    path = make_tiny_model(tmp_path / arch, arch=arch)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=attention_kind)
    shape = ModelShape.of(model.config)
    sequences, attention, response = _grouped_batch(model.config.vocab_size)
    assert plan_shared_prompts(sequences, attention, response, shape) is not None  # the packed path is taken
    valid = attention[:, -response:].bool()
    results = []
    for shared in (None, shape):
        model.zero_grad()
        logprobs, entropy = response_logprobs(model, sequences, attention, response, temperature=0.7,
                                              with_entropy=True, entropy_grad=True, shared_prompts=shared)
        ((logprobs + 0.1 * entropy) * valid).sum().backward()
        grads = {name: param.grad.clone() for name, param in model.named_parameters()}
        results.append((logprobs.detach() * valid, entropy.detach() * valid, grads))
    (plain_lp, plain_entropy, plain_grads), (packed_lp, packed_entropy, packed_grads) = results
    torch.testing.assert_close(packed_lp, plain_lp, atol=1e-5, rtol=0)
    torch.testing.assert_close(packed_entropy, plain_entropy, atol=1e-5, rtol=0)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, atol=1e-5, rtol=1e-4)
    assert any(grad.abs().sum() > 0 for grad in plain_grads.values())
