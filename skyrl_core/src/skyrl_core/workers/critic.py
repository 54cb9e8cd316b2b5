"""The critic's part of a training worker: token values and the clipped value-loss update."""

from __future__ import annotations

from typing import Any

import torch

from skyrl_core.algorithms.reduction import reduce_loss
from skyrl_core.algorithms.value_loss import clipped_value_loss
from skyrl_core.trainer.train_batch import MiniBatch, TrainingBatch, TrainRequest
from skyrl_core.workers.logprobs import position_ids_from_mask

_SUMS = ("loss", "clip", "tokens")


def response_values(forward: Any, sequences: torch.Tensor, attention_mask: torch.Tensor,
                    num_response: int) -> torch.Tensor:
    """``[batch, num_response]``: the value of the state before each response token (the prefix up to it), read
    from the value head at the position before the token, as the log-probs are."""
    out = forward(input_ids=sequences, attention_mask=attention_mask,
                  position_ids=position_ids_from_mask(attention_mask))
    return out.logits[:, -num_response - 1 : -1, 0].float()


class CriticMixin:
    """Methods of :class:`~skyrl_core.workers.train_worker.TrainWorker` for ``role="critic"``."""

    strategy: Any
    config: Any

    def compute_values(self, batch: TrainingBatch) -> torch.Tensor:
        batch = batch.to(self.strategy.device)
        chunk = max(1, self.config.trainer.micro_forward_batch_size_per_gpu)
        self.strategy.set_train(False)
        with torch.no_grad():
            out = [response_values(self.strategy.forward, batch.sequences[s : s + chunk],
                                   batch.attention_mask[s : s + chunk], batch.num_response)
                   for s in range(0, batch.num_rows, chunk)]
        return torch.cat(out).cpu()

    def train_critic(self, request: TrainRequest) -> dict[str, float]:
        """One optimizer step per mini-batch and epoch on the clipped value loss; metrics averaged over steps."""
        batch = request.batch.to(self.strategy.device)
        totals: dict[str, float] = {}
        steps = 0
        for _ in range(request.epochs):
            for mini in request.mini_batches:
                for key, value in self._critic_mini_batch(batch, mini).items():
                    totals[key] = totals.get(key, 0.0) + value
                steps += 1
        metrics = {k: v / max(1, steps) for k, v in totals.items()}
        metrics["critic/lr"] = self.strategy.current_lr()
        return metrics

    def _critic_mini_batch(self, batch: TrainingBatch, mini: MiniBatch) -> dict[str, float]:
        critic = self.config.trainer.critic
        micro = max(1, self.config.trainer.micro_train_batch_size_per_gpu)
        chunks = [mini.rows[i : i + micro] for i in range(0, len(mini.rows), micro)]
        sums = torch.zeros(len(_SUMS), dtype=torch.float64)
        self.strategy.set_train(True)
        for i, rows in enumerate(chunks):
            part = batch.select(rows)
            with self.strategy.accumulate(last=i == len(chunks) - 1):
                values = response_values(self.strategy.forward, part.sequences, part.attention_mask,
                                         part.num_response)
                token_losses, info = clipped_value_loss(
                    values=values, old_values=part.values, returns=part.returns, loss_mask=part.loss_mask,
                    value_clip=self.config.trainer.algorithm.value_clip)
                loss = reduce_loss(token_losses, part.loss_mask, reduction="token_mean",
                                   global_token_count=mini.global_tokens, global_seq_count=mini.global_seqs)
                self.strategy.backward(loss)
            tokens = float(part.loss_mask.sum())
            sums += torch.tensor([float(loss.detach()), info["clip_fraction"] * tokens, tokens], dtype=torch.float64)
        stats = self.strategy.optimizer_step(critic.optimizer_config.max_grad_norm)
        total = dict(zip(_SUMS, self.strategy.all_reduce_sum(sums).tolist(), strict=True))
        return {"critic/value_loss": total["loss"], "critic/clip_fraction": total["clip"] / max(1.0, total["tokens"]),
                "critic/grad_norm": stats.grad_norm}
