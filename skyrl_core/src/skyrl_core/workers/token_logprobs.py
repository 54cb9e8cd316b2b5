"""Log-probs (and entropies) of chosen tokens from LM-head logits, a few rows of the vocabulary at a time.

For rows ``z = logits[i] / T`` and target token ``t``:

- log-prob: ``log_softmax(z)[t] = z[t] - logsumexp(z)``;
- entropy: ``H = sum_j softmax(z)_j (logsumexp(z) - z_j)`` (``-inf`` logits contribute 0);
- gradient of the log-prob: ``d/d logits_j = (1[j = t] - softmax(z)_j) / T`` (the log-softmax derivative).

Done over the whole ``[tokens, vocabulary]`` tensor these are several passes over a tensor far larger than the CPU's
caches (a 49k vocabulary x 1,024 tokens is 200 MB in float32), plus a float32 copy of bf16 logits and a saved
softmax for the backward. Here each chunk of rows is cast, reduced and differentiated while it is in cache, the
float32 copy never exists whole, and the backward recomputes the chunk's softmax from the saved ``logsumexp``.
The rows are picked by index, so callers need not copy the logits they want out of the model's output.
"""

from __future__ import annotations

from typing import Any

import torch

#: Bytes of float32 logits per chunk: a few rows of the vocabulary, sized to stay in a core's cache on CPU; on an
#: accelerator larger chunks keep the number of kernel launches small.
CHUNK_BYTES = {"cpu": 1 << 20}
DEFAULT_CHUNK_BYTES = 256 << 20


def _chunk_rows(logits: torch.Tensor) -> int:
    budget = CHUNK_BYTES.get(logits.device.type, DEFAULT_CHUNK_BYTES)
    return max(1, budget // (4 * logits.shape[-1]))


def _scaled_rows(logits: torch.Tensor, rows: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits[rows] / T`` as a new float32 tensor (one chunk)."""
    z = logits.index_select(0, rows).float()
    return z.div_(temperature) if temperature != 1.0 else z


class _ChunkedTokenLogProbs(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor, temperature: float,
                with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        count, step = rows.shape[0], _chunk_rows(logits)
        logprobs = torch.empty(count, dtype=torch.float32, device=logits.device)
        lse = torch.empty_like(logprobs)
        entropy = torch.empty(count if with_entropy else 0, dtype=torch.float32, device=logits.device)
        for start in range(0, count, step):
            part = slice(start, start + step)
            z = _scaled_rows(logits, rows[part], temperature)
            lse[part] = torch.logsumexp(z, dim=-1)
            logprobs[part] = z.gather(1, targets[part, None]).squeeze(1) - lse[part]
            if with_entropy:
                surprise = lse[part, None] - z  # -log softmax(z), >= 0: a sum of non-negative terms, no cancellation
                probs = torch.exp(-surprise)
                entropy[part] = torch.where(probs > 0, probs * surprise, 0.0).sum(dim=-1)
        ctx.save_for_backward(logits, rows, targets, lse)
        ctx.temperature = temperature
        ctx.mark_non_differentiable(entropy)
        return logprobs, entropy

    @staticmethod
    def backward(ctx: Any, grad_logprobs: torch.Tensor, _grad_entropy: Any) -> tuple[Any, ...]:
        logits, rows, targets, lse = ctx.saved_tensors
        temperature, step = ctx.temperature, _chunk_rows(logits)
        grad = torch.zeros_like(logits)
        for start in range(0, rows.shape[0], step):
            part = slice(start, start + step)
            z = _scaled_rows(logits, rows[part], temperature)
            upstream = grad_logprobs[part, None] / temperature  # the chain rule through z = logits / T
            chunk = torch.exp(z - lse[part, None]).mul_(-upstream)  # -softmax * g / T
            chunk.scatter_add_(1, targets[part, None], upstream)  # + 1[j = t] * g / T
            grad.index_add_(0, rows[part], chunk.to(grad.dtype))  # a row picked twice gets both gradients
        return grad, None, None, None, None


def token_logprobs(logits: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor, *, temperature: float = 1.0,
                   with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logprobs, entropy)``, each ``[len(rows)]`` float32: for each ``i``, row ``rows[i]`` of the 2D ``logits``
    (``[positions, vocabulary]``, any float dtype) predicting token ``targets[i]``. The log-probs carry the
    gradient to ``logits``; the entropy (a metric) does not."""
    logprobs, entropy = _ChunkedTokenLogProbs.apply(logits, rows, targets, float(temperature or 1.0), with_entropy)
    return logprobs, (entropy if with_entropy else None)
