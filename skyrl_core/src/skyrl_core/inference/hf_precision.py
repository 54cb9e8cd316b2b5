"""The ``hf`` engine's ``bfloat16``: the numerics of the trainer's bf16 autocast, not a model cast to bf16.

The trainer's ``trainer.bf16`` runs the fp32 model under ``torch.autocast(dtype=bfloat16)``: matrix products
(linear layers, attention) in bf16 with fp32 accumulation, everything else (embeddings, norms, the residual
stream, softmax) in fp32. A model cast to bf16 instead keeps its residual stream and norms in bf16, which moved
the log-probs of SmolLM2-135M's samples by about 0.04 on average from the trainer's. So with ``dtype="bfloat16"``
the engine:

- keeps every linear layer's weight in bf16 (the values autocast would cast them to: round to nearest even) and
  every other parameter in fp32, and runs its forward passes under bf16 autocast;
- keeps the output head (``lm_head``, tied to the input embedding or not) in fp32 and computes the logits in fp32,
  as the trainer does under ``trainer.bf16`` (:mod:`skyrl_core.mixed_precision`);
- asks for its weights in fp32 (``weight_transfer_dtype``), so the fp32 parameters get the trainer's exact
  values and the bf16 ones the trainer's autocast values.

What remains is the rounding of each bf16 matrix product and of the fused attention, whose accumulation order
depends on the shapes of a call (one query per row when decoding, whole sequences in training). Measured on
SmolLM2-135M-Instruct (32 sampled completions of 48 tokens, requests arriving while others decode, as in a run):
mean absolute engine vs trainer log-prob gap 0.014 with the fp32 output head on both sides, 0.030 with bf16
logits, 0.041 for a model cast to bf16; attention in fp32 as well gave 0.012-0.015, not worth its cost. The decode
is 10-15% faster than the cast model's.
"""

from __future__ import annotations

import torch


def cast_linear_layers(model: torch.nn.Module, dtype: torch.dtype, *, keep: torch.nn.Module | None = None) -> None:
    """Every ``nn.Linear``'s parameters to ``dtype`` in place, except ``keep`` (other modules keep theirs)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not keep:
            module.to(dtype)
