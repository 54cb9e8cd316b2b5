"""Masked statistics and the loss reduction shared by every policy / value loss.

Shapes: token tensors are ``[batch, response_tokens]``; masks are float or bool 0/1 of the same shape.

Why :func:`reduce_loss` takes *global* counts
---------------------------------------------
A mini-batch (one optimizer step) is split across data-parallel workers and, on each worker, into
micro-batches (gradient accumulation). If every micro-batch divided by its *own* token count, the
gradient would depend on how the mini-batch happened to be split. Instead each micro-batch divides by the
token / sequence count of the **whole mini-batch over all workers**, so that

    sum over workers, sum over micro-batches of reduce_loss(...)  ==  the mini-batch loss

exactly, whatever the micro-batch size or the number of workers.

Note for the distributed caller: DDP / FSDP / DeepSpeed *average* gradients across ranks (all-reduce then
divide by the data-parallel size), whereas the identity above needs a *sum* over ranks. Each strategy's
``backward`` therefore multiplies what it receives by its data-parallel size; this module does not know about
ranks.
"""

from __future__ import annotations

import torch

from skyrl_core.errors import UserError

__all__ = [
    "REDUCTIONS",
    "entropy_from_logits",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "reduce_loss",
]

REDUCTIONS: tuple[str, ...] = ("token_mean", "sequence_mean", "seq_mean_token_sum_norm")


def _as_float_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.to(dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """``sum(x * mask)`` over ``dim`` (all elements when ``dim`` is None)."""
    m = _as_float_mask(mask, x)
    prod = x * m
    return prod.sum() if dim is None else prod.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Masked mean ``sum(x * mask) / sum(mask)`` over ``dim`` (all elements when ``dim`` is None).

    Same semantics as SkyRL's ``masked_mean``: the denominator is clamped to at least 1, so a slice with no
    valid tokens yields 0 instead of NaN.
    """
    m = _as_float_mask(mask, x)
    num = masked_sum(x, m, dim)
    den = m.sum() if dim is None else m.sum(dim=dim)
    return num / den.clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked elements of ``x`` (scalar).

    ``var = masked_mean((x - masked_mean(x))^2)``, times the Bessel factor ``n / (n - 1)`` when ``unbiased``
    (verl / SkyRL ``masked_var`` default). Deviation: with ``n <= 1`` valid elements the Bessel factor is
    undefined; we skip it (returning the biased variance, i.e. 0) instead of raising.
    """
    m = _as_float_mask(mask, x)
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m)
    if unbiased:
        n = m.sum()
        if n.item() > 1:
            var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Whiten ``x`` using statistics of its masked elements: ``(x - mean) / sqrt(var + eps)``.

    mean and (unbiased) variance are taken over the mask-1 elements of the whole tensor (see
    :func:`masked_var`), as in SkyRL / verl ``masked_whiten(shift_mean=True)``. Deviation: positions where
    the mask is 0 are set to 0 in the result (the reference leaves them as garbage whitened values).
    """
    m = _as_float_mask(mask, x)
    mean = masked_mean(x, m)
    var = masked_var(x, m, unbiased=True)
    return (x - mean) * torch.rsqrt(var + eps) * m


def reduce_loss(
    token_losses: torch.Tensor,
    loss_mask: torch.Tensor,
    *,
    reduction: str,
    global_token_count: float,
    global_seq_count: float,
    max_seq_len: int | None = None,
) -> torch.Tensor:
    """This micro-batch's contribution to the mini-batch loss (scalar tensor).

    With ``l`` the per-token losses, ``m`` the mask, ``N_tok`` = ``global_token_count`` (mask-1 tokens in
    the whole mini-batch over all workers) and ``N_seq`` = ``global_seq_count`` (rows in the whole
    mini-batch over all workers):

    * ``"token_mean"``:  ``sum_{i,t} l_it m_it / N_tok`` -- every token weighs the same (Yu et al. 2025).
    * ``"sequence_mean"``:  ``sum_i (sum_t l_it m_it / sum_t m_it) / N_seq`` -- mean over sequences of the
      per-sequence token mean (original GRPO). A row with no valid token contributes 0.
    * ``"seq_mean_token_sum_norm"``:  ``sum_i (sum_t l_it m_it / max_seq_len) / N_seq`` -- Dr. GRPO
      (Liu et al. 2025, "Understanding R1-Zero-Like Training"): divide each sequence's token sum by a
      constant instead of its own length, removing the length bias. ``max_seq_len`` is required.

    Summing the result over every micro-batch of every worker gives the mini-batch loss exactly
    (see the module docstring for the DDP ``world_size`` factor, which the caller applies).
    """
    if reduction not in REDUCTIONS:
        raise UserError(f"unknown loss reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
    m = _as_float_mask(loss_mask, token_losses)
    if reduction == "token_mean":
        return masked_sum(token_losses, m) / float(global_token_count)
    if reduction == "sequence_mean":
        return masked_mean(token_losses, m, dim=-1).sum() / float(global_seq_count)
    if max_seq_len is None:
        raise UserError("loss reduction 'seq_mean_token_sum_norm' needs max_seq_len (the maximum response length)")
    return (masked_sum(token_losses, m, dim=-1) / float(max_seq_len)).sum() / float(global_seq_count)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of ``softmax(logits)`` over the last dim: ``H = logsumexp(z) - sum_k softmax(z)_k z_k``.

    Computed via ``logsumexp`` so large logits do not overflow; ``-inf`` logits (masked vocabulary entries)
    contribute 0 rather than ``0 * -inf = NaN``. Differentiable: the entropy bonus of the loss uses it (the metric
    alone comes from :mod:`skyrl_core.workers.token_logprobs`, chunked and without a graph).
    """
    lse = torch.logsumexp(logits, dim=-1)
    probs = torch.softmax(logits, dim=-1)
    p_z = torch.where(probs > 0, probs * logits, torch.zeros_like(logits))
    return lse - p_z.sum(dim=-1)
