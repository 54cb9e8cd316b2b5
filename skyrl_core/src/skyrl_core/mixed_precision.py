"""bf16 autocast with a float32 output head, the numerics the trainer (``trainer.bf16``) and the ``hf`` engine
(``dtype="bfloat16"``) share.

Under bf16 autocast the LM head's logits come out in bf16: 8 bits of mantissa, so a logit near 16 is only known to
within 0.03-0.06, and the engine and the trainer, which round different accumulations, disagree on log-probs by
about that much (0.03 on average on SmolLM2-135M, three times SkyRL's 0.01 bound). Running the output head alone
in float32, on the float32 hidden state autocast leaves after the final norm, removes that rounding on both
sides; the head is one matrix product per token, so the cost is small next to the decoder layers.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def bf16_autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``enabled``; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def run_output_head_in_float32(model: torch.nn.Module) -> None:
    """Make ``model``'s output embedding (the LM head) compute in float32 even under autocast. Its parameters
    (names, values, a tie to the input embedding) are untouched: only the module's forward changes."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        return

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            bias = None if head.bias is None else head.bias.float()
            return torch.nn.functional.linear(hidden.float(), head.weight.float(), bias)

    head.forward = forward
