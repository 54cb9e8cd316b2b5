"""The running batch of the ``hf`` engine (continuous batching), driven one step at a time on the compute thread.

One :meth:`DecodeBatch.step`:

1. rows that were aborted (or whose caller went away) leave the batch;
2. new rows join: each distinct prompt is prefilled once (or taken from the :class:`PrefixCache`), and its keys and
   values are stacked into the batch's cache, left-padded to a common width (see :mod:`skyrl_core.inference.hf_kv`);
3. every row samples one token from its pending logits (:func:`skyrl_core.inference.hf_sampling.sample`);
4. rows that stopped leave; the others' new tokens go through one forward pass, which gives the next logits.

Stopping: a row stops with ``"stop"`` when it samples an EOS id (the tokenizer's and the generation config's) or
one of its ``stop_token_ids``, or when the decoded text of its generated tokens comes to contain one of its
``stop`` strings; the token that did it is included. It stops with ``"length"`` after ``max_tokens`` tokens. Stop
strings are matched on ``tokenizer.decode(..., skip_special_tokens=False)`` of only the last few tokens (enough to
hold the longest stop string), so checking costs O(1) per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch
from transformers import DynamicCache

from skyrl_core.inference.base import GenerationResult, StopReason
from skyrl_core.inference.hf_kv import PrefixCache, PrefixEntry, cache_of, concat, layers_of, trim_left
from skyrl_core.inference.hf_sampling import RowSampling, sample

#: ``forward(input_ids, attention_mask, position_ids, cache) -> float32 logits of the last position``.
Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, DynamicCache], torch.Tensor]

# Extra tokens decoded in front of the longest stop string, for tokenizers that drop a leading space.
_STOP_WINDOW_SLACK = 2


@attrs.define(eq=False)
class Row:
    """One request from arrival to its result; ``future`` belongs to the engine's event loop."""

    request_id: str | None
    prompt: tuple[int, ...]
    sampling: RowSampling
    stop_ids: frozenset[int]
    stops: list[str]
    future: Any
    tokens: list[int] = attrs.field(factory=list)
    logprobs: list[float] = attrs.field(factory=list)
    stop_reason: StopReason | None = None
    aborted: bool = False

    @property
    def window(self) -> int:
        return max((len(s.encode()) for s in self.stops), default=0) + _STOP_WINDOW_SLACK

    def result(self) -> GenerationResult:
        reason = "abort" if self.aborted else (self.stop_reason or "length")
        return GenerationResult(token_ids=list(self.tokens), logprobs=list(self.logprobs), stop_reason=reason)


class DecodeBatch:
    """The rows being generated, their KV cache, attention mask and next-token logits (compute thread only)."""

    def __init__(self, *, forward: Forward, tokenizer: Any, pad_id: int, device: torch.device,
                 prefix: PrefixCache) -> None:
        self.forward = forward
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.device = device
        self.prefix = prefix
        self.rows: list[Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None

    def clear(self) -> None:
        """Forget the running rows (their callers are answered by the engine) and the prefix cache."""
        self.rows, self.cache, self.mask, self.logits = [], None, None, None
        self.prefix.clear()

    @torch.no_grad()
    def step(self, admitted: list[Row], dropped: list[Row]) -> list[Row]:
        """Run one step (see the module doc); the rows that left the batch, finished or dropped."""
        gone = set(dropped)
        finished = [row for row in self.rows if row in gone]
        if finished:
            self._keep([i for i, row in enumerate(self.rows) if row not in gone])
        if admitted:
            self._admit(admitted)
        if not self.rows:
            return finished
        tokens, logprobs = sample(self.logits, [row.sampling for row in self.rows])  # type: ignore[arg-type]
        keep = []
        for i, (row, token, logprob) in enumerate(zip(self.rows, tokens, logprobs, strict=True)):
            if self._append(row, token, logprob):
                finished.append(row)
            else:
                keep.append(i)
        if len(keep) < len(self.rows):
            self._keep(keep)
        if self.rows:
            ids = torch.tensor([tokens[i] for i in keep], device=self.device)[:, None]
            mask = torch.cat([self.mask, self.mask.new_ones(len(keep), 1)], dim=1)  # type: ignore[list-item]
            self.logits = self.forward(ids, mask, mask.sum(-1, keepdim=True) - 1, self.cache)  # type: ignore[arg-type]
            self.cache, self.mask = trim_left(self.cache, mask)  # type: ignore[arg-type]
        return finished

    # -- internals ----------------------------------------------------------------------------------------------

    def _keep(self, index: list[int]) -> None:
        if not index:
            self.rows, self.cache, self.mask, self.logits = [], None, None, None
            return
        self.rows = [self.rows[i] for i in index]
        selected = torch.tensor(index, device=self.device)
        self.cache.batch_select_indices(selected)  # type: ignore[union-attr]
        self.mask, self.logits = self.mask[selected], self.logits[selected]  # type: ignore[index]

    def _admit(self, rows: list[Row]) -> None:
        """Prefill the prompts not in the prefix cache (each distinct one once) and stack the rows into the batch."""
        entries: dict[tuple[int, ...], PrefixEntry] = {}
        missing = []
        for row in rows:
            if row.prompt not in entries and row.prompt not in missing:
                entry = self.prefix.get(row.prompt)
                if entry is None:
                    missing.append(row.prompt)
                else:
                    entries[row.prompt] = entry
        if missing:
            entries.update(self._prefill(missing))
        parts = [(layers_of(self.cache), self.mask)] if self.rows else []  # type: ignore[arg-type]
        parts += [(entries[row.prompt].layers, entries[row.prompt].mask) for row in rows]
        layers, self.mask = concat(parts)  # type: ignore[arg-type]
        self.cache = cache_of(layers)
        new_logits = torch.stack([entries[row.prompt].logits for row in rows])
        self.logits = new_logits if self.logits is None or not self.rows else torch.cat([self.logits, new_logits])
        for row in rows:
            if row.sampling.params.repetition_penalty != 1.0:
                row.sampling.seen = torch.zeros(new_logits.shape[-1], dtype=torch.bool, device=self.device)
                row.sampling.seen[list(row.prompt)] = True
        self.rows += rows

    def _prefill(self, prompts: list[tuple[int, ...]]) -> dict[tuple[int, ...], PrefixEntry]:
        """One left-padded forward over ``prompts``; each prompt's unpadded keys, values and last logits."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        cache = DynamicCache()
        logits = self.forward(ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), cache)
        out = {}
        for i, prompt in enumerate(prompts):
            start = width - len(prompt)
            layers = [(k[i:i + 1, :, start:].clone(), v[i:i + 1, :, start:].clone()) for k, v in layers_of(cache)]
            out[prompt] = entry = PrefixEntry(layers=layers, logits=logits[i])
            self.prefix.put(prompt, entry)
        return out

    def _append(self, row: Row, token: int, logprob: float) -> bool:
        """Record a sampled token; True (and the stop reason set) when the row is now finished."""
        row.tokens.append(token)
        row.logprobs.append(logprob)
        row.sampling.observe(token)
        if token in row.stop_ids or (row.stops and self._has_stop_string(row)):
            row.stop_reason = "stop"
        elif len(row.tokens) >= row.sampling.params.max_tokens:
            row.stop_reason = "length"
        return row.stop_reason is not None

    def _has_stop_string(self, row: Row) -> bool:
        # Every token decodes to at least one byte, so a stop string completed by the newest token lies within the
        # last ``len(stop in bytes)`` tokens; an earlier completion would have stopped the row already.
        tail = self.tokenizer.decode(
            row.tokens[-row.window:], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return any(stop in tail for stop in row.stops)
