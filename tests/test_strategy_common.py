"""The optimizer and schedule every strategy shares."""

from __future__ import annotations

import attrs
import pytest
import torch

from skyrl_core.config.schema import OptimizerConfig
from skyrl_core.errors import UserError
from skyrl_core.strategy.common import build_optimizer_and_scheduler


def _lrs(config: OptimizerConfig, steps: int) -> list[float]:
    model = torch.nn.Linear(2, 1)
    optimizer, scheduler = build_optimizer_and_scheduler(model, config)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_constant_with_warmup_ramps_linearly_then_holds():
    # lr * min(1, (step + 1) / warmup): 0.25, 0.5, 0.75, 1.0, 1.0 (times lr = 0.1)
    lrs = _lrs(OptimizerConfig(lr=0.1, num_warmup_steps=4), 6)
    assert lrs == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_constant_ignores_warmup_and_adamw_settings_apply():
    assert _lrs(OptimizerConfig(lr=0.1, num_warmup_steps=4, scheduler="constant"), 3) == pytest.approx([0.1] * 3)
    model = torch.nn.Linear(2, 1)
    optimizer, _ = build_optimizer_and_scheduler(model, OptimizerConfig(adam_betas=[0.8, 0.9], weight_decay=0.5))
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.9) and optimizer.param_groups[0]["weight_decay"] == 0.5


def test_unknown_scheduler_is_refused_by_the_config_and_by_the_strategy():
    with pytest.raises(ValueError, match="constant_with_warmup"):
        OptimizerConfig(scheduler="cosine")
    with attrs.validators.disabled():  # a config built in code, past the field checks
        config = OptimizerConfig(scheduler="cosine")
    with pytest.raises(UserError, match="constant_with_warmup"):
        _lrs(config, 1)


def test_fused_adamw_takes_the_same_steps_as_the_default_loop():
    torch.manual_seed(0)
    models = [torch.nn.Linear(64, 32) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    config = OptimizerConfig(lr=1e-2, weight_decay=0.01)
    optimizers = [build_optimizer_and_scheduler(models[0], config)[0],
                  build_optimizer_and_scheduler(models[1], config, fused=True)[0]]
    assert optimizers[1].defaults["fused"] and not optimizers[0].defaults["fused"]
    for _ in range(5):
        inputs = torch.randn(8, 64)
        for model, optimizer in zip(models, optimizers):
            model(inputs).pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    for ours, theirs in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
