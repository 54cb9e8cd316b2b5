"""``SkyrlWorkerExtension``: mixed into every vLLM worker process (``worker_extension_cls``), reached through
``collective_rpc``; it holds that worker's skyrl weight receiver.

Arguments travel as pickled ``bytes`` (vLLM's RPC encoder accepts bytes; arbitrary objects would need
``VLLM_ALLOW_INSECURE_SERIALIZATION=1``). Weights are loaded with ``model.load_weights(weights=...)``, which takes
Hugging Face names and maps them onto vLLM's fused parameters itself (``q_proj``/``k_proj``/``v_proj`` into
``qkv_proj``, ``gate_proj``/``up_proj`` into ``gate_up_proj``) and shards them for tensor parallelism, so the
sender's names are passed as they are. Plain ``load_weights`` suits bf16/fp16/fp32 checkpoints; quantized models
would need vLLM's layerwise reload and are not supported.
"""

from __future__ import annotations

import pickle
from typing import Any


def encode(*values: Any) -> bytes:
    return pickle.dumps(values)


def decode(blob: bytes) -> tuple[Any, ...]:
    return pickle.loads(blob)  # noqa: S301 - bytes made by this plugin in the engine actor of this run


class SkyrlWorkerExtension:
    """Methods added to vLLM's ``Worker`` (which provides ``rank``, ``device`` and ``model_runner``)."""

    rank: int
    device: Any
    model_runner: Any
    _skyrl_receiver: Any = None

    def skyrl_init_receiver(self, blob: bytes) -> None:
        """Build this worker's receiver (rank ``first_rank + worker rank``) and connect it."""
        from skyrl_core.inference.receivers import build_receiver

        info, first_rank = decode(blob)
        receiver = build_receiver(info, first_rank + self.rank)
        receiver.connect()
        self._skyrl_receiver = receiver

    def skyrl_update_weights(self, blob: bytes) -> None:
        """Receive one chunk and load it; returns once the new values are in the model."""
        import torch

        (request,) = decode(blob)
        if self._skyrl_receiver is None:
            raise RuntimeError("skyrl_update_weights before skyrl_init_receiver")
        self.model_runner.model.load_weights(weights=self._skyrl_receiver.receive(request, self.device))
        if torch.cuda.is_available():
            torch.cuda.synchronize(self.device)

    def skyrl_close_receiver(self) -> None:
        if self._skyrl_receiver is not None:
            self._skyrl_receiver.close()
            self._skyrl_receiver = None
