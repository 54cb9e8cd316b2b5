"""The ``generator.hf`` config section (kept free of torch imports)."""

from __future__ import annotations

import attrs


@attrs.define(kw_only=True)
class HFEngineConfig:
    """``generator.hf``: the built-in transformers engine."""

    max_batch_size: int | None = attrs.field(
        default=None,
        metadata={"help": "Most rows decoded together; later requests wait for a free row (None: no limit)."},
    )
    prefix_cache_tokens: int = attrs.field(
        default=65536,
        metadata={"help": "Prompt tokens whose prefill is kept for reuse (least recently used evicted; 0: off)."},
    )
