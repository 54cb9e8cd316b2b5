"""Pieces every strategy shares: loading the HF model, AdamW and the ``constant_with_warmup`` schedule."""

from __future__ import annotations

from typing import Any

import torch

from skyrl_core.errors import UserError

SCHEDULERS = ("constant_with_warmup", "constant")


def load_hf_model(model_path: str, config: Any, *, trainable: bool) -> torch.nn.Module:
    """The causal LM in fp32 (bf16 autocast happens in the forward), with gradient checkpointing if asked."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch.float32, **dict(config.trainer.policy.model_config_kwargs)
        )
    except OSError as exc:
        raise UserError(
            f"cannot load model '{model_path}': {exc}. Set trainer.policy.model.path to a local HF model folder "
            "(for an offline test: skyrl model tiny --output-dir DIR)"
        ) from None
    if trainable:
        model.train()
        if config.trainer.gradient_checkpointing:
            kwargs = {"use_reentrant": config.trainer.gradient_checkpointing_use_reentrant}
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 (the old name is deprecated)
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
            model.config.use_cache = False
    else:
        model.eval()
        model.requires_grad_(False)
    return model


def build_optimizer_and_scheduler(model: torch.nn.Module, optimizer_config: Any) -> tuple[Any, Any]:
    """AdamW plus a LambdaLR: linear warm-up over ``num_warmup_steps`` optimizer steps, then constant."""
    if optimizer_config.scheduler not in SCHEDULERS:
        raise UserError(
            f"trainer.policy.optimizer_config.scheduler: unknown scheduler '{optimizer_config.scheduler}'. "
            f"Available: {', '.join(SCHEDULERS)}"
        )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=optimizer_config.lr,
        betas=tuple(optimizer_config.adam_betas),
        weight_decay=optimizer_config.weight_decay,
    )
    warmup = optimizer_config.num_warmup_steps if optimizer_config.scheduler == "constant_with_warmup" else 0

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
