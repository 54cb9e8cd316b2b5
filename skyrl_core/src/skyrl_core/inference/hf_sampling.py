"""Sampling one token per row for the ``hf`` engine, each row with its own parameters and random generator.

Per step, from the float32 logits ``z`` of the last position of each row (the formulas of the CTRL paper, Keskar et
al. 2019, for the penalty; Holtzman et al. 2020 for top-p; Nguyen et al. 2024 for min-p):

1. repetition penalty ``r`` (1.0 = off) over the prompt and the tokens generated so far: a seen token's logit
   becomes ``z / r`` when ``z > 0`` and ``z * r`` otherwise;
2. temperature ``T``: ``z / T``; ``T == 0`` means greedy, the argmax of the (penalised) logits, no draw;
3. top-k (-1 or 0 = off): logits below the k-th largest become -inf; then top-p (1.0 = off): in descending order,
   a token is dropped when the probability mass before it already reaches ``p``; then min-p (0 = off): tokens whose
   probability is below ``min_p * max probability`` are dropped; each step sees what the previous one kept;
4. one draw by inverse transform sampling: ``u ~ U[0, 1)`` from the row's own ``torch.Generator`` (one number per
   row and step), and the token is the first index whose cumulative probability (in float64) exceeds
   ``u * total``. That is an exact draw from the truncated distribution (tokens of probability 0 are never chosen),
   made for all rows in one ``cumsum`` and one ``searchsorted``: a per-row ``torch.multinomial`` over a 49k
   vocabulary cost about as much as the decode step's matrix products on CPU.

The returned log-prob is ``log_softmax(z / T)`` at the chosen token over the *full* distribution, before the
penalty and the truncation, with ``T = 1`` when ``T == 0`` (the convention of :mod:`skyrl_core.inference.base`).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from skyrl_core.inference.base import SamplingParams


@attrs.define(eq=False)
class RowSampling:
    """One row's sampling state: its parameters, its generator (``None`` when greedy) and, when the repetition
    penalty is on, the boolean vector of the token ids it has seen."""

    params: SamplingParams
    generator: torch.Generator | None
    seen: torch.Tensor | None = None

    def observe(self, token: int) -> None:
        if self.seen is not None:
            self.seen[token] = True


def penalise(logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """CTRL repetition penalty, per row: seen tokens' logits divided by ``penalty`` when positive, else multiplied."""
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def truncate(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Per row, set to -inf the logits removed by top-k, then top-p, then min-p (each off at its neutral value:
    ``top_k <= 0`` or ``>= vocab``, ``top_p >= 1``, ``min_p <= 0``)."""
    vocab = scaled.shape[-1]
    use_k = (top_k > 0) & (top_k < vocab)
    if use_k.any():
        ordered = scaled.sort(dim=-1, descending=True).values
        kth = ordered.gather(-1, (top_k.clamp(1, vocab) - 1)[:, None])
        scaled = scaled.masked_fill(use_k[:, None] & (scaled < kth), float("-inf"))
    use_p = top_p < 1.0
    if use_p.any():
        ordered, order = scaled.sort(dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        drop_ordered = (probs.cumsum(dim=-1) - probs >= top_p[:, None]) & use_p[:, None]
        drop = torch.empty_like(drop_ordered).scatter_(-1, order, drop_ordered)
        scaled = scaled.masked_fill(drop, float("-inf"))
    use_min = min_p > 0.0
    if use_min.any():
        probs = torch.softmax(scaled, dim=-1)
        floor = min_p[:, None] * probs.max(dim=-1, keepdim=True).values
        scaled = scaled.masked_fill(use_min[:, None] & (probs < floor), float("-inf"))
    return scaled


def sample(logits: torch.Tensor, rows: Sequence[RowSampling]) -> tuple[list[int], list[float]]:
    """One token per row of ``logits`` (float32, ``[rows, vocab]``) and its log-prob (see the module doc)."""
    device = logits.device

    def column(values: list[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=device)

    temperatures = [r.params.temperature if r.params.temperature > 0 else 1.0 for r in rows]
    temperature = column(temperatures)
    unit_temperature = all(t == 1.0 for t in temperatures)
    logprobs = torch.log_softmax(logits if unit_temperature else logits / temperature[:, None], dim=-1)
    penalised = logits
    with_penalty = [i for i, r in enumerate(rows) if r.seen is not None]
    if with_penalty:
        index = torch.tensor(with_penalty, device=device)
        seen = torch.stack([rows[i].seen for i in with_penalty])  # type: ignore[misc]  # not None by the filter
        penalty = column([rows[i].params.repetition_penalty for i in with_penalty])[:, None]
        penalised = logits.index_copy(0, index, penalise(logits[index], seen, penalty))
    tokens = penalised.argmax(dim=-1)
    drawn = [i for i, r in enumerate(rows) if r.params.temperature > 0]
    if drawn:
        index = torch.tensor(drawn, device=device)
        picked = [rows[i].params for i in drawn]
        scaled = penalised[index] if unit_temperature else penalised[index] / temperature[index][:, None]
        scaled = truncate(
            scaled,
            column([p.top_k for p in picked], torch.long),
            column([p.top_p for p in picked]),
            column([p.min_p for p in picked]),
        )
        uniforms = torch.cat([torch.rand(1, generator=rows[i].generator, device=device) for i in drawn])
        tokens[index] = inverse_transform(torch.softmax(scaled, dim=-1), uniforms)
    chosen = logprobs.gather(-1, tokens[:, None]).squeeze(-1)
    return tokens.tolist(), chosen.tolist()


def inverse_transform(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the first index whose cumulative probability exceeds ``u * total`` (``uniforms`` in ``[0, 1)``).

    Token ``i`` is chosen when ``cdf[i - 1] <= u * total < cdf[i]``, an interval of length ``probs[i]``, so each
    token is drawn with its probability and a token of probability 0 (an empty interval) never is.
    """
    cdf = probs.double().cumsum(dim=-1)
    targets = uniforms.double()[:, None] * cdf[:, -1:]
    picked = torch.searchsorted(cdf, targets, right=True).squeeze(-1)
    return picked.clamp(max=probs.shape[-1] - 1)
