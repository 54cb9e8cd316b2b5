"""From generated trajectories to training tensors, and the split of a batch over mini-batches and workers.

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


def split_for_workers(
    batch: RolloutBatch, *, world_size: int, rows_per_mini_batch: int, max_seq_len: int | None
) -> list[tuple[dict[str, torch.Tensor], list[dict[str, Any]]]]:
    """Per worker: its rows' tensors and, per mini-batch, its local row indices plus the global normalisers.

    Mini-batch ``m`` is rows ``[m * R, (m + 1) * R)`` of the batch (``R = rows_per_mini_batch``); worker ``w``
    gets the ``w``-th contiguous slice of each mini-batch.
    """
    total = batch.num_rows
    mask = batch.tensors["loss_mask"]
    per_worker_rows: list[list[int]] = [[] for _ in range(world_size)]
    per_worker_specs: list[list[dict[str, Any]]] = [[] for _ in range(world_size)]
    for start in range(0, total, rows_per_mini_batch):
        mini = list(range(start, min(total, start + rows_per_mini_batch)))
        global_tokens = float(mask[mini].sum())
        slices = [mini[w * len(mini) // world_size : (w + 1) * len(mini) // world_size] for w in range(world_size)]
        for w, rows in enumerate(slices):
            local = list(range(len(per_worker_rows[w]), len(per_worker_rows[w]) + len(rows)))
            per_worker_rows[w].extend(rows)
            per_worker_specs[w].append(
                {"rows": local, "global_tokens": global_tokens, "global_seqs": float(len(mini)),
                 "max_seq_len": max_seq_len}
            )
    result = []
    for w in range(world_size):
        index = torch.tensor(per_worker_rows[w], dtype=torch.long)
        result.append(({k: v.index_select(0, index) for k, v in batch.tensors.items()}, per_worker_specs[w]))
    return result
