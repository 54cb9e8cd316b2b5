"""Key/value caches of the ``hf`` engine: the running batch's cache and the prefix cache of prompts.

A batch cache is a transformers ``DynamicCache`` whose layers hold keys and values of shape
``[rows, kv_heads, width, head_dim]`` plus an attention mask ``[rows, width]``; rows are left-padded (mask 0 on the
left). Keys are stored after the rotary embedding and positions come from the mask (``cumsum - 1``), so padding a
row on the left with masked zeros changes nothing it computes: rows of different lengths, prefilled at different
times, can share one batch. Only plain ``DynamicLayer`` layers (full attention) are supported.

The batch cache's layers are :class:`GrowingLayer`: keys and values live in buffers with spare columns, so a decode
step writes its one new column in place instead of copying the whole cache (transformers' ``DynamicLayer``
concatenates, which cost about a tenth of a decode step of a 135M model on CPU); rows leaving and leading columns
being trimmed select from the buffers without losing the spare room.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

#: Per layer, ``(keys, values)`` of shape ``[rows, kv_heads, width, head_dim]``.
LayerKV = list[tuple[torch.Tensor, torch.Tensor]]


def layers_of(cache: DynamicCache) -> LayerKV:
    return [(layer.keys, layer.values) for layer in cache.layers]


def cache_of(layers: LayerKV) -> DynamicCache:
    """A batch cache holding copies of ``layers`` in :class:`GrowingLayer` buffers."""
    cache = DynamicCache()
    cache.layers = [GrowingLayer(keys, values) for keys, values in layers]
    return cache


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` whose ``keys``/``values`` are views of the first ``length`` columns of larger buffers.

    When the buffers are full they are reallocated with as many spare columns as they hold (at least
    ``MIN_SPARE``), so ``n`` decode steps copy the cache O(log n) times instead of n times.
    """

    MIN_SPARE = 32

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.lazy_initialization(keys, values)
        self._allocate(keys, values)

    def _allocate(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        length = keys.shape[-2]
        capacity = length + max(length, self.MIN_SPARE)
        self._key_buffer = keys.new_empty((*keys.shape[:-2], capacity, keys.shape[-1]))
        self._value_buffer = values.new_empty((*values.shape[:-2], capacity, values.shape[-1]))
        self._key_buffer[..., :length, :] = keys
        self._value_buffer[..., :length, :] = values
        self._expose(length)

    def _expose(self, length: int) -> None:
        self.length = length
        self.keys = self._key_buffer[..., :length, :]
        self.values = self._value_buffer[..., :length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object,
               **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        if self.length + new > self._key_buffer.shape[-2]:
            self._allocate(self.keys, self.values)
        self._key_buffer[..., self.length : self.length + new, :] = key_states
        self._value_buffer[..., self.length : self.length + new, :] = value_states
        self._expose(self.length + new)
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._key_buffer, self._value_buffer = self._key_buffer[indices], self._value_buffer[indices]
        self._expose(self.length)

    def drop_left(self, columns: int) -> None:
        """Forget the first ``columns`` columns (a view: the spare room on the right stays)."""
        self._key_buffer = self._key_buffer[..., columns:, :]
        self._value_buffer = self._value_buffer[..., columns:, :]
        self._expose(self.length - columns)


def pad_left(layers: LayerKV, mask: torch.Tensor, width: int) -> tuple[LayerKV, torch.Tensor]:
    """Widen to ``width`` columns with masked zeros on the left."""
    extra = width - mask.shape[1]
    if extra == 0:
        return layers, mask
    padded = [(torch.nn.functional.pad(k, (0, 0, extra, 0)), torch.nn.functional.pad(v, (0, 0, extra, 0)))
              for k, v in layers]
    return padded, torch.nn.functional.pad(mask, (extra, 0))


def concat(parts: list[tuple[LayerKV, torch.Tensor]]) -> tuple[LayerKV, torch.Tensor]:
    """Stack the rows of several caches (each left-padded to the widest)."""
    width = max(mask.shape[1] for _, mask in parts)
    padded = [pad_left(layers, mask, width) for layers, mask in parts]
    num_layers = len(padded[0][0])
    layers = [
        (torch.cat([p[0][i][0] for p in padded]), torch.cat([p[0][i][1] for p in padded])) for i in range(num_layers)
    ]
    return layers, torch.cat([mask for _, mask in padded])


def trim_left(cache: DynamicCache, mask: torch.Tensor) -> tuple[DynamicCache, torch.Tensor]:
    """Drop the leading columns that no row attends to (left behind by rows that finished)."""
    used = mask.any(dim=0).nonzero()
    start = int(used[0]) if len(used) else mask.shape[1]
    if start == 0:
        return cache, mask
    for layer in cache.layers:
        layer.drop_left(start)  # type: ignore[attr-defined]  # batch caches are built by cache_of
    return cache, mask[:, start:]


@attrs.define(eq=False)
class PrefixEntry:
    """A prompt's keys and values (one row, no padding) and the logits that predict its first new token."""

    layers: LayerKV
    logits: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        width = self.layers[0][0].shape[2]
        return torch.ones(1, width, dtype=torch.long, device=self.logits.device)


class PrefixCache:
    """Prompts' prefills, keyed by their token ids, least recently used evicted beyond ``max_tokens`` tokens.

    ``max_tokens == 0`` keeps nothing between admissions (repeats within one admission still share a prefill).
    """

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], PrefixEntry] = OrderedDict()
        self.tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prompt: tuple[int, ...]) -> PrefixEntry | None:
        entry = self._entries.get(prompt)
        if entry is not None:
            self._entries.move_to_end(prompt)
        return entry

    def put(self, prompt: tuple[int, ...], entry: PrefixEntry) -> None:
        if prompt in self._entries or len(prompt) > self.max_tokens:
            return
        self._entries[prompt] = entry
        self.tokens += len(prompt)
        while self.tokens > self.max_tokens:
            evicted, _ = self._entries.popitem(last=False)
            self.tokens -= len(evicted)

    def clear(self) -> None:
        self._entries.clear()
        self.tokens = 0
