"""From generated trajectories to the batch that algorithm batch hooks see and edit.

Tensor layout (``[rows, columns]``): ``sequences = [left-padded prompt | right-padded response]``;
``attention_mask`` is 1 on real tokens; ``loss_mask``, ``token_rewards`` and ``rollout_logprobs`` cover the
response columns only.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from skyrl_core.generator.types import GeneratorOutput


@attrs.define(kw_only=True)
class RolloutBatch:
    """One step's trajectories as tensors; what algorithm batch hooks receive and may edit.

    ``group_ids`` is each row's prompt group (GRPO/RLOO), ``output`` the generator's raw output.
    """

    tensors: dict[str, torch.Tensor]
    group_ids: list[Any]
    output: GeneratorOutput

    @property
    def num_rows(self) -> int:
        return self.tensors["sequences"].shape[0]


def build_batch(output: GeneratorOutput, group_ids: list[Any], pad_token_id: int) -> RolloutBatch:
    prompt_len = max(len(p) for p in output.prompt_token_ids)
    response_len = max(1, max(len(r) for r in output.response_ids))
    rows = len(output.prompt_token_ids)
    sequences = torch.full((rows, prompt_len + response_len), pad_token_id, dtype=torch.long)
    attention = torch.zeros((rows, prompt_len + response_len), dtype=torch.long)
    loss_mask = torch.zeros((rows, response_len), dtype=torch.float32)
    rewards = torch.zeros((rows, response_len), dtype=torch.float32)
    rollout = torch.zeros((rows, response_len), dtype=torch.float32)
    for i, (prompt, response) in enumerate(zip(output.prompt_token_ids, output.response_ids, strict=True)):
        sequences[i, prompt_len - len(prompt) : prompt_len] = torch.tensor(prompt)
        attention[i, prompt_len - len(prompt) : prompt_len] = 1
        n = len(response)
        if n:
            sequences[i, prompt_len : prompt_len + n] = torch.tensor(response)
            attention[i, prompt_len : prompt_len + n] = 1
            loss_mask[i, :n] = torch.tensor(output.loss_masks[i], dtype=torch.float32)
            rewards[i, :n] = torch.tensor(output.token_rewards[i], dtype=torch.float32)
            rollout[i, :n] = torch.tensor(output.rollout_logprobs[i], dtype=torch.float32)
    tensors = {
        "sequences": sequences,
        "attention_mask": attention,
        "loss_mask": loss_mask,
        "token_rewards": rewards,
        "rollout_logprobs": rollout,
    }
    return RolloutBatch(tensors=tensors, group_ids=list(group_ids), output=output)
