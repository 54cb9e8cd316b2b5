"""The ``hf`` engine's ``bfloat16``: the numerics of the trainer's bf16 autocast, not a model cast to bf16.

The trainer's ``trainer.bf16`` runs the fp32 model under ``torch.autocast(dtype=bfloat16)``: matrix products
(linear layers, attention) in bf16 with fp32 accumulation, everything else (embeddings, norms, the residual
stream, softmax) in fp32. A model cast to bf16 instead keeps its residual stream and norms in bf16, which moved
the log-probs of SmolLM2-135M's samples by about 0.04 on average from the trainer's. So with ``dtype="bfloat16"``
the engine:

- keeps every linear layer's weight in bf16 (the values autocast would cast them to: round to nearest even) and
  every other parameter in fp32, and runs its forward passes under bf16 autocast;
- gives a tied output embedding (``lm_head`` sharing the input embedding) its own bf16 copy, kept in step with
  the input embedding on every weight update (:func:`untie_output_embedding`);
- asks for its weights in fp32 (``weight_transfer_dtype``), so the fp32 parameters get the trainer's exact
  values and the bf16 ones the trainer's autocast values.

What remains is the attention: PyTorch's fused attention in bf16 gives results that depend on how many queries a
call has and where the padding sits (one query per row when decoding, the whole sequence in training). Measured on
SmolLM2-135M-Instruct (32 sampled completions of 48 tokens, requests arriving while others decode, as in a run):
mean absolute engine vs trainer log-prob gap 0.030, against 0.041 for a model cast to bf16; the decode is also
10-15% faster than the cast model's. With the ``eager`` attention on both sides the gap is 1e-5 when all rows of
a batch arrive together, but 0.011-0.025 when they do not (a decode's keys are then left-padded differently from
the trainer's), and the eager attention made a 135M training step 25% slower, so neither side uses it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def cast_linear_layers(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Every ``nn.Linear``'s parameters to ``dtype`` in place (other modules keep theirs)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(dtype)


def untie_output_embedding(model: torch.nn.Module) -> dict[str, list[str]]:
    """Give a tied output embedding its own parameter; returns ``{input embedding name: [output name]}`` (empty
    when the model is not tied), the names a received input embedding must also be copied to."""
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if outputs is None or outputs.weight is not inputs.weight:
        return {}
    output_name = next(name for name, module in model.named_modules() if module is outputs) + ".weight"
    input_name = next(name for name, p in model.named_parameters() if p is inputs.weight)
    outputs.weight = torch.nn.Parameter(inputs.weight.detach().clone(), requires_grad=False)
    for config in (model.config, model.config.get_text_config()):
        config.tie_word_embeddings = False  # a level-2 wake must not tie them again
    return {input_name: [output_name]}


def autocast_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``enabled``; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
