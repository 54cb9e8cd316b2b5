"""One forward for the rows of a micro-batch that share a prompt (a GRPO group): the prompt is computed once.

The plain layout runs every row as ``[left-padded prompt | right-padded response]``, so a group of ``k`` samples
of one prompt pays for the prompt ``k`` times, in the forward and again in the backward. The shared layout packs
each distinct prompt with the responses of all its rows into one sequence::

    [prompt | response of sample 1 | response of sample 2 | ... | response of sample k]

with a 4D attention mask under which every response attends to the prompt and causally to itself, never to a
sibling, and position ids that restart after the prompt for every response. Each response token then sees exactly
the keys and positions it sees in the plain layout, so log-probs and gradients are the same up to float rounding
(the gradients of the prompt's activations are summed over the group inside one backward). The technique is the
"shared-prefix forward" of Prefix Grouper (Liu et al., 2025, arXiv:2506.05433).

It pays when prompts are long next to responses: the linear layers, which dominate a step, run on
``U * (P + k * R)`` tokens instead of ``B * (P + R)`` (``B`` rows, ``U`` distinct prompts, ``k`` rows of the largest
group, prompt width ``P``, response width ``R``), while attention, computed over the dense mask, grows from
``B * (P + R)^2`` to ``U * (P + k * R)^2`` key-query pairs. :func:`plan_shared_prompts` weighs both with the
model's shape and keeps the plain layout when sharing would not be cheaper. Only attention kernels that take an
arbitrary 4D mask can use it (``sdpa`` and ``eager``); flash-attention models keep the plain layout.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

#: Attention implementations that accept a custom 4D mask, and the mask each wants.
MASKED_ATTENTION = {"sdpa": "bool", "eager": "additive"}


@attrs.frozen
class ModelShape:
    """What the cost comparison needs of a model: per layer, the linear-layer FLOPs per token and the attention
    FLOPs per key-query pair (both ``2 x`` multiply-adds)."""

    linear_flops_per_token: float
    attention_flops_per_pair: float
    mask_kind: str  # "bool" or "additive"

    @classmethod
    def of(cls, hf_config: Any) -> ModelShape | None:
        """From an HF config of a decoder (llama/qwen/mistral-like fields); ``None`` when its attention kernel
        cannot take a 4D mask, or when some layers attend through a sliding window (a custom mask replaces the
        window, so packing would change what those layers see)."""
        mask_kind = MASKED_ATTENTION.get(getattr(hf_config, "_attn_implementation", None) or "eager")
        hidden = getattr(hf_config, "hidden_size", None)
        if mask_kind is None or not hidden or _has_sliding_window(hf_config):
            return None
        heads = getattr(hf_config, "num_attention_heads", 1)
        head_dim = getattr(hf_config, "head_dim", None) or hidden // heads
        kv_heads = getattr(hf_config, "num_key_value_heads", None) or heads
        mlp = getattr(hf_config, "intermediate_size", None) or 4 * hidden
        attention_weights = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
        return cls(linear_flops_per_token=2.0 * (attention_weights + 3 * hidden * mlp),
                   attention_flops_per_pair=4.0 * heads * head_dim, mask_kind=mask_kind)

    def cost(self, sequences: int, length: int) -> float:
        """Per-layer forward FLOPs of ``sequences`` rows of ``length`` tokens under a dense mask."""
        return sequences * (length * self.linear_flops_per_token + length * length * self.attention_flops_per_pair)


def _has_sliding_window(hf_config: Any) -> bool:
    layer_types = getattr(hf_config, "layer_types", None)
    if layer_types is not None:
        return any(kind != "full_attention" for kind in layer_types)
    return bool(getattr(hf_config, "sliding_window", None)) and getattr(hf_config, "use_sliding_window", True)


@attrs.frozen
class SharedPromptLayout:
    """Where each row of the plain layout sits in the packed one.

    :param group: ``[B]`` the packed sequence of each row.
    :param slot: ``[B]`` its response's place within that sequence (0 .. ``slots - 1``).
    :param first_row: ``[U]`` a row of each packed sequence, whose prompt columns it takes.
    :param slots: responses per packed sequence (the largest group; smaller groups leave slots empty).
    :param prompt_width: ``P``, the prompt columns (left-padded) both layouts share.
    :param num_response: ``R``, the response columns of each row.
    """

    group: torch.Tensor
    slot: torch.Tensor
    first_row: torch.Tensor
    slots: int
    prompt_width: int
    num_response: int

    @property
    def num_groups(self) -> int:
        return self.first_row.shape[0]

    def _pack(self, prompt: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        """``[U, P + slots * R]``: each group's prompt, then its rows' responses in their slots (zeros in empty
        slots)."""
        block = response.new_zeros(self.num_groups, self.slots, self.num_response)
        block[self.group, self.slot] = response
        return torch.cat([prompt[self.first_row], block.flatten(1)], dim=1)

    def model_inputs(self, sequences: torch.Tensor, attention_mask: torch.Tensor, *,
                     mask_kind: str) -> dict[str, Any]:
        """The HF keyword inputs of the packed forward (``logits_to_keep`` included). An additive mask is float32
        (eager attention adds it to the scores, which promotes bf16 scores to float32 before the softmax)."""
        width = self.prompt_width
        valid = self._pack(attention_mask[:, :width], attention_mask[:, width:]).bool()
        input_ids = self._pack(sequences[:, :width], sequences[:, width:])
        prompt_mask = attention_mask[:, :width].long()
        prompt_tokens = prompt_mask.sum(-1, keepdim=True)
        # a response token's position in the plain layout: prompt tokens + response tokens up to it, minus one
        response_positions = prompt_tokens + attention_mask[:, width:].long().cumsum(-1) - 1
        position_ids = self._pack(prompt_mask.cumsum(-1) - 1, response_positions).clamp(min=0)
        segment = torch.cat([torch.zeros(width, dtype=torch.long, device=sequences.device),
                             torch.arange(1, self.slots + 1, device=sequences.device)
                             .repeat_interleave(self.num_response)])
        query, key = segment[:, None], segment[None, :]
        length = segment.shape[0]
        causal = torch.ones(length, length, dtype=torch.bool, device=sequences.device).tril()
        allowed = (causal & ((key == 0) | (key == query)))[None] & valid[:, None, :]
        allowed |= torch.eye(length, dtype=torch.bool, device=sequences.device)  # padding queries: no empty rows
        mask = allowed[:, None]
        if mask_kind == "additive":
            blocked = torch.finfo(torch.float32).min
            mask = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(~mask, blocked)
        return {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids, "use_cache": False,
                "logits_to_keep": length - width + 1}

    def logit_rows(self, kept: int) -> torch.Tensor:
        """``[B, R]``: for each row's response tokens, the row of the packed forward's logits, flattened to
        ``[groups * kept, vocab]`` (``kept`` = ``logits_to_keep``: the last prompt column, then every response
        column), that predicts it: the prompt's last column for the first token, then the response's own."""
        steps = torch.arange(self.num_response - 1, device=self.slot.device)
        within = 1 + self.slot[:, None] * self.num_response + steps[None, :]
        columns = torch.cat([torch.zeros_like(within[:, :1]), within], dim=1)
        return self.group[:, None] * kept + columns


def plan_shared_prompts(sequences: torch.Tensor, attention_mask: torch.Tensor, num_response: int,
                        shape: ModelShape) -> SharedPromptLayout | None:
    """The packed layout of a micro-batch, or ``None`` when no prompt repeats or packing would cost more FLOPs
    (see the module doc for the comparison)."""
    rows, width = sequences.shape[0], sequences.shape[1] - num_response
    if rows < 2 or width == 0 or num_response == 0:
        return None
    prompt_key = sequences[:, :width].masked_fill(attention_mask[:, :width] == 0, -1)
    _, group = torch.unique(prompt_key, dim=0, return_inverse=True)
    counts = torch.bincount(group)
    groups, slots = counts.shape[0], int(counts.max())
    if groups == rows:
        return None
    if shape.cost(groups, width + slots * num_response) >= shape.cost(rows, width + num_response):
        return None
    order = torch.argsort(group, stable=True)
    starts = counts.cumsum(0) - counts
    slot = torch.empty_like(group)
    slot[order] = torch.arange(rows, device=group.device) - starts[group[order]]
    first_row = order[starts]
    return SharedPromptLayout(group=group, slot=slot, first_row=first_row, slots=slots, prompt_width=width,
                              num_response=num_response)
