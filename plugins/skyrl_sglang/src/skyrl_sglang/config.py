"""``generator.sglang``: options of the SGLang engine that have no backend-neutral key.

The memory and batching knobs are the ``generator.*`` keys shared with vLLM (see :mod:`skyrl_sglang.args` for how
each maps onto SGLang's server arguments); any other server argument goes through ``generator.engine_init_kwargs``.
"""

from __future__ import annotations

import attrs


@attrs.define(kw_only=True)
class SGLangConfig:
    context_length: int | None = attrs.field(
        default=None,
        metadata={"help": "Longest prompt + completion of one request (None: the model's own limit)."},
    )
