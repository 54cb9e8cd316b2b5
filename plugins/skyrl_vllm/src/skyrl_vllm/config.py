"""``generator.vllm``: options of the vLLM engine that have no backend-neutral key.

The memory and batching knobs (``gpu_memory_utilization``, ``max_num_seqs``, ``max_num_batched_tokens``,
``enable_prefix_caching``, ``enforce_eager``) are the ``generator.*`` keys of the same names and reach the engine as
constructor keywords; every other vLLM engine argument goes through ``generator.engine_init_kwargs``.
"""

from __future__ import annotations

import attrs


@attrs.define(kw_only=True)
class VLLMConfig:
    max_model_len: int | None = attrs.field(
        default=None,
        metadata={"help": "Longest prompt + completion of one request (None: the model's own limit)."},
    )
