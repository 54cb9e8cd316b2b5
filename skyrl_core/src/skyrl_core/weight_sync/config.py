"""Config sections of the built-in weight-sync transports (kept free of torch imports)."""

from __future__ import annotations

import attrs


@attrs.define(kw_only=True)
class BroadcastConfig:
    """``generator.gloo`` / ``generator.nccl``."""

    bucket_size_mb: float = attrs.field(default=256.0, metadata={"help": "Largest flat buffer per broadcast (MB)."})
