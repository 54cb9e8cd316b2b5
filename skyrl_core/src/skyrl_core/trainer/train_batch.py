"""The typed batch the trainer sends to its worker groups, and the plan of one policy update.

Tensor layout (``[rows, columns]``): ``sequences = [left-padded prompt | right-padded response]``;
``attention_mask`` is 1 on real tokens; every other tensor covers the response columns only.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch


@attrs.define(kw_only=True)
class TrainingBatch:
    """Rows of trajectories as tensors; what the worker groups compute on.

    :param sequences: prompt and response token ids.
    :param attention_mask: 1 on real tokens.
    :param loss_mask: 1 on response tokens that are trained.
    :param advantages: per-token advantages (training only).
    :param rollout_logprobs: the engine's log-probs of the sampled tokens.
    :param old_logprobs: the policy's log-probs before this update (absent on on-policy updates).
    :param ref_logprobs: the reference policy's log-probs (KL).
    :param returns: per-token returns (critic targets).
    :param values: the critic's values before this update.
    """

    sequences: torch.Tensor
    attention_mask: torch.Tensor
    loss_mask: torch.Tensor
    advantages: torch.Tensor | None = None
    rollout_logprobs: torch.Tensor | None = None
    old_logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    values: torch.Tensor | None = None

    @property
    def num_rows(self) -> int:
        return self.sequences.shape[0]

    @property
    def num_response(self) -> int:
        return self.loss_mask.shape[1]

    def _map(self, fn: Any) -> TrainingBatch:
        return TrainingBatch(**{f.name: (None if (v := getattr(self, f.name)) is None else fn(v))
                                for f in attrs.fields(TrainingBatch)})

    def select(self, rows: list[int] | torch.Tensor) -> TrainingBatch:
        """The given rows, in that order."""
        index = torch.as_tensor(rows, dtype=torch.long)
        return self._map(lambda t: t.index_select(0, index.to(t.device)))

    def slice(self, start: int, end: int) -> TrainingBatch:
        return self._map(lambda t: t[start:end])

    def to(self, device: torch.device | str) -> TrainingBatch:
        return self._map(lambda t: t.to(device))

    def forward_inputs(self) -> TrainingBatch:
        """Only what a log-prob pass needs."""
        return TrainingBatch(sequences=self.sequences, attention_mask=self.attention_mask, loss_mask=self.loss_mask)


@attrs.frozen(kw_only=True)
class MiniBatch:
    """One optimizer step of one worker: its local row indices and the mini-batch's global normalisers (over
    every data-parallel rank), which make the gradient independent of micro-batch size and worker count."""

    rows: list[int]
    global_tokens: float
    global_seqs: float
    max_seq_len: int | None = None


@attrs.define(kw_only=True)
class TrainRequest:
    """One worker's share of a policy (or critic) update.

    ``on_policy`` says the batch was sampled by exactly the weights about to be trained and is used for one
    optimizer step: the old log-probs are then the training forward's own (detached), which saves a forward pass.
    Otherwise ``batch.old_logprobs`` must be set.
    """

    batch: TrainingBatch
    mini_batches: list[MiniBatch]
    epochs: int = 1
    on_policy: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.on_policy and self.batch.old_logprobs is None and self.batch.advantages is not None:
            raise ValueError("TrainRequest: an off-policy update needs batch.old_logprobs")


def split_for_workers(batch: TrainingBatch, *, dp_size: int, rows_per_mini_batch: int, max_seq_len: int | None,
                      epochs: int = 1, on_policy: bool = False) -> list[TrainRequest]:
    """One :class:`TrainRequest` per data-parallel rank.

    Mini-batch ``m`` is rows ``[m * R, (m + 1) * R)`` of the batch (``R = rows_per_mini_batch``); rank ``d`` gets
    the ``d``-th contiguous slice of each mini-batch.
    """
    total = batch.num_rows
    mask = batch.loss_mask
    rows_of: list[list[int]] = [[] for _ in range(dp_size)]
    minis_of: list[list[MiniBatch]] = [[] for _ in range(dp_size)]
    for start in range(0, total, rows_per_mini_batch):
        mini = list(range(start, min(total, start + rows_per_mini_batch)))
        global_tokens = max(1.0, float(mask[mini].sum()))  # a fully masked mini-batch: loss 0, not 0/0
        for d in range(dp_size):
            rows = mini[d * len(mini) // dp_size : (d + 1) * len(mini) // dp_size]
            local = list(range(len(rows_of[d]), len(rows_of[d]) + len(rows)))
            rows_of[d].extend(rows)
            minis_of[d].append(MiniBatch(rows=local, global_tokens=global_tokens, global_seqs=float(len(mini)),
                                         max_seq_len=max_seq_len))
    return [TrainRequest(batch=batch.select(rows_of[d]), mini_batches=minis_of[d], epochs=epochs,
                         on_policy=on_policy) for d in range(dp_size)]


def split_rows(batch: TrainingBatch, dp_size: int) -> list[TrainingBatch]:
    """Contiguous, near-equal row slices, one per data-parallel rank (forward-only passes)."""
    bounds = [batch.num_rows * d // dp_size for d in range(dp_size + 1)]
    return [batch.slice(bounds[d], bounds[d + 1]) for d in range(dp_size)]
