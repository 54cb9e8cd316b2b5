"""Log-probabilities of response tokens under a causal LM, the trainer's side of ``rollout/logprob_diff_mean``.

Layout of a batch: ``sequences = [left-padded prompt | right-padded response]`` with ``num_response`` response
columns. Position ids are ``cumsum(attention_mask) - 1`` (clamped at 0), as the inference engine uses, so the same
tokens see the same positions in both. The log-prob of response token ``t`` is
``log_softmax(logits[t - 1] / T)[token_t]`` computed in float32 over the full vocabulary, a few logit rows at a
time (:mod:`skyrl_core.workers.token_logprobs`).

Rows that share a prompt can run in one packed forward instead (:mod:`skyrl_core.workers.shared_prompt`), which
gives the same log-probs from fewer token positions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from skyrl_core.algorithms.reduction import entropy_from_logits
from skyrl_core.workers.shared_prompt import ModelShape, plan_shared_prompts
from skyrl_core.workers.token_logprobs import token_logprobs


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def response_logprobs(
    forward: Callable[..., Any],
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    num_response: int,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = False,
    shared_prompts: ModelShape | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logprobs, entropy)`` of the last ``num_response`` columns, each ``[batch, num_response]``.

    ``forward`` runs the model (a strategy's :meth:`~skyrl_core.strategy.Strategy.forward`, or an HF model).
    The entropy is only part of the autograd graph with ``entropy_grad`` (an entropy bonus in the loss); as a
    metric it is computed without one. With ``shared_prompts`` (the model's shape), rows with the same prompt run
    in one packed forward when that costs fewer FLOPs.
    """
    layout = shared_prompts and plan_shared_prompts(sequences, attention_mask, num_response, shared_prompts)
    if layout:
        packed = layout.model_inputs(sequences, attention_mask, mask_kind=shared_prompts.mask_kind)
        logits = forward(**packed).logits
        rows = layout.logit_rows(packed["logits_to_keep"])
    else:
        logits = forward(
            input_ids=sequences,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
            logits_to_keep=num_response + 1,  # the LM head runs on the response positions only
        ).logits
        kept = num_response + 1
        rows = (torch.arange(sequences.shape[0], device=logits.device)[:, None] * kept
                + torch.arange(num_response, device=logits.device)[None, :])  # column t predicts token t + 1
    logits = logits.reshape(-1, logits.shape[-1])
    rows = rows.to(logits.device)
    targets = sequences[:, -num_response:].to(logits.device)
    if with_entropy and entropy_grad and torch.is_grad_enabled():  # the entropy is part of the loss
        chosen = logits.index_select(0, rows.flatten()).float().view(*rows.shape, -1)
        if temperature and temperature != 1.0:
            chosen = chosen / temperature
        # log_softmax(x)[t] = x[t] - logsumexp(x), without materialising the log-softmax
        logprobs = chosen.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(chosen, dim=-1)
        return logprobs, entropy_from_logits(chosen)
    logprobs, entropy = token_logprobs(logits, rows.flatten(), targets.flatten(), temperature=temperature,
                                       with_entropy=with_entropy)
    return logprobs.view(rows.shape), None if entropy is None else entropy.view(rows.shape)
