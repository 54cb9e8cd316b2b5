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

    ``group_ids`` is each row's prompt group (GRPO/RLOO), ``output`` the generator's raw output. A hook may add
    scalar ``metrics`` (e.g. how many rows it filtered); they are summed over a step's generation rounds and logged
    with the step.
    """

    tensors: dict[str, torch.Tensor]
    group_ids: list[Any]
    output: GeneratorOutput
    metrics: dict[str, float] = attrs.field(factory=dict)

    @property
    def num_rows(self) -> int:
        return self.tensors["sequences"].shape[0]

    @property
    def prompt_width(self) -> int:
        """Columns of ``sequences`` that hold the (left-padded) prompt."""
        return self.tensors["sequences"].shape[1] - self.tensors["loss_mask"].shape[1]

    @property
    def num_groups(self) -> int:
        return len(dict.fromkeys(self.group_ids))

    def select(self, rows: list[int]) -> RolloutBatch:
        """The given rows (tensors, group ids and the generator output's per-trajectory lists), in that order."""
        index = torch.tensor(rows, dtype=torch.long)
        return RolloutBatch(tensors={k: v.index_select(0, index) for k, v in self.tensors.items()},
                            group_ids=[self.group_ids[i] for i in rows], output=_select_output(self.output, rows),
                            metrics=dict(self.metrics))

    def select_groups(self, keep: Any) -> RolloutBatch:
        """The rows whose group id satisfies ``keep(group_id)``, in order."""
        return self.select([i for i, gid in enumerate(self.group_ids) if keep(gid)])

    @staticmethod
    def concat(batches: list[RolloutBatch], pad_token_id: int) -> RolloutBatch:
        """Rows of ``batches`` one after the other; prompts re-padded on the left, responses on the right."""
        if len(batches) == 1:
            return batches[0]
        prompt = max(b.prompt_width for b in batches)
        response = max(b.tensors["loss_mask"].shape[1] for b in batches)
        tensors: dict[str, torch.Tensor] = {}
        for key in batches[0].tensors:
            parts = []
            for b in batches:
                t, width = b.tensors[key], b.prompt_width
                if key in ("sequences", "attention_mask"):
                    fill = pad_token_id if key == "sequences" else 0
                    head = torch.nn.functional.pad(t[:, :width], (prompt - width, 0), value=fill)
                    tail = torch.nn.functional.pad(t[:, width:], (0, response - (t.shape[1] - width)), value=fill)
                    parts.append(torch.cat([head, tail], dim=1))
                else:
                    parts.append(torch.nn.functional.pad(t, (0, response - t.shape[1])))
            tensors[key] = torch.cat(parts)
        rows = [list(range(b.num_rows)) for b in batches]
        output = concat_outputs([_select_output(b.output, r) for b, r in zip(batches, rows, strict=True)])
        return RolloutBatch(tensors=tensors, group_ids=[g for b in batches for g in b.group_ids], output=output)


_PER_TRAJECTORY = ("prompt_token_ids", "response_ids", "loss_masks", "token_rewards", "rollout_logprobs",
                   "stop_reasons", "rewards", "env_classes", "num_turns")


def _select_output(output: GeneratorOutput, rows: list[int]) -> GeneratorOutput:
    fields = {name: [getattr(output, name)[i] for i in rows] for name in _PER_TRAJECTORY}
    return GeneratorOutput(**fields, env_metrics=dict(output.env_metrics), num_env_errors=output.num_env_errors,
                           num_env_timeouts=output.num_env_timeouts)


def concat_outputs(outputs: list[GeneratorOutput]) -> GeneratorOutput:
    """The trajectories of ``outputs`` one after the other (env metrics: the last output's)."""
    fields = {name: [x for o in outputs for x in getattr(o, name)] for name in _PER_TRAJECTORY}
    return GeneratorOutput(**fields, env_metrics=dict(outputs[-1].env_metrics),
                           num_env_errors=sum(o.num_env_errors for o in outputs),
                           num_env_timeouts=sum(o.num_env_timeouts for o in outputs))


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
