"""Config sections of the built-in weight-sync transports (kept free of torch imports)."""

from __future__ import annotations

import attrs


@attrs.define(kw_only=True)
class BroadcastConfig:
    """``generator.gloo`` / ``generator.nccl`` / ``generator.ray``."""

    bucket_size_mb: float = attrs.field(
        default=256.0,
        metadata={"help": "Largest chunk of weights sent at once (MB); the sender holds at most one chunk extra."},
    )
