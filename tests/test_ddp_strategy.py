"""The ``ddp`` strategy through the Strategy interface, in one process (no Ray): the step, skipped steps,
streamed weights and checkpoint files."""

from __future__ import annotations

import math

import pytest
import torch

from skyrl_core.errors import UserError
from skyrl_core.strategy.ddp import DDPStrategy
from skyrl_core.workers.logprobs import response_logprobs


@pytest.fixture
def strategy(plugin_manager, tiny_model_path, tmp_path):
    from e2e_helpers import run_config

    config = run_config(plugin_manager, tiny_model_path, tmp_path / "run", "trainer.policy.optimizer_config.lr=1e-2")
    strategy = DDPStrategy(config=None, run_config=config)
    strategy.init_distributed(rank=0, world_size=1, master_addr="127.0.0.1", master_port=0)
    strategy.build_model(str(tiny_model_path), trainable=True, optimizer_config=config.trainer.policy.optimizer_config)
    return strategy


def _loss(strategy: DDPStrategy) -> torch.Tensor:
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    logprobs, _ = response_logprobs(strategy.forward, ids, torch.ones_like(ids), 3)
    return -logprobs.sum()


def test_a_step_changes_the_weights_and_reports_norm_and_lr(strategy):
    before = {k: v.clone() for k, v in strategy.unwrapped_model.state_dict().items()}
    with strategy.accumulate(last=True):
        strategy.backward(_loss(strategy))
    stats = strategy.optimizer_step(max_norm=1.0)
    assert stats.grad_norm > 0 and not stats.skipped and stats.lr == pytest.approx(1e-2)
    after = strategy.unwrapped_model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in strategy.unwrapped_model.parameters())


def test_a_non_finite_gradient_norm_skips_the_update(strategy):
    before = {k: v.clone() for k, v in strategy.unwrapped_model.state_dict().items()}
    strategy.backward(_loss(strategy) * float("inf"))
    stats = strategy.optimizer_step(max_norm=1.0)
    assert stats.skipped and not math.isfinite(stats.grad_norm)
    after = strategy.unwrapped_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert strategy.scheduler.last_epoch == 0  # the schedule did not advance


def test_iter_weights_streams_every_weight_in_buckets(strategy):
    state = strategy.unwrapped_model.state_dict()
    largest = max(t.numel() * 4 for t in state.values())
    chunks = list(strategy.iter_weights(dtype=torch.float32, bucket_bytes=largest))
    assert len(chunks) > 1
    assert all(c.nbytes <= largest for c in chunks)
    names = [n for c in chunks for n in c.names]
    assert names == list(state)
    for chunk in chunks:
        for name, tensor in zip(chunk.names, chunk.tensors, strict=True):
            assert torch.equal(tensor, state[name])
    bf16 = next(strategy.iter_weights(dtype=torch.bfloat16, bucket_bytes=1 << 30))
    assert bf16.dtypes == ["bfloat16"] * len(bf16.names)


def test_checkpoint_round_trip_restores_weights_and_optimizer(strategy, tmp_path):
    strategy.backward(_loss(strategy))
    strategy.optimizer_step(max_norm=1.0)
    strategy.save_checkpoint(str(tmp_path))
    saved = {k: v.clone() for k, v in strategy.unwrapped_model.state_dict().items()}
    saved_step = {k: v["step"].clone() for k, v in strategy.optimizer.state.items()}
    strategy.backward(_loss(strategy))
    strategy.optimizer_step(max_norm=1.0)
    strategy.load_checkpoint(str(tmp_path))
    for name, tensor in strategy.unwrapped_model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    assert {k: v["step"] for k, v in strategy.optimizer.state.items()} == saved_step
    assert strategy.scheduler.last_epoch == 1


def test_a_truncated_checkpoint_file_is_a_user_error_naming_it(strategy, tmp_path):
    strategy.save_checkpoint(str(tmp_path))
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError, match="model.safetensors"):
        strategy.load_checkpoint(str(tmp_path))
    (tmp_path / "optimizer.pt").unlink()
    with pytest.raises(UserError, match="missing"):
        DDPStrategy.load_checkpoint(strategy, str(tmp_path / "nowhere"))


def test_bf16_autocast_keeps_the_output_head_and_its_logits_in_float32(plugin_manager, tiny_model_path, tmp_path):
    from e2e_helpers import run_config

    config = run_config(plugin_manager, tiny_model_path, tmp_path / "run", "trainer.bf16=true")
    strategy = DDPStrategy(config=None, run_config=config)
    strategy.init_distributed(rank=0, world_size=1, master_addr="127.0.0.1", master_port=0)
    strategy.build_model(str(tiny_model_path), trainable=True, optimizer_config=config.trainer.policy.optimizer_config)
    model = strategy.unwrapped_model
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    out = strategy.forward(input_ids=ids, output_hidden_states=True)
    assert out.logits.dtype == torch.float32  # autocast alone would give bf16 logits
    with torch.no_grad():  # the fp32 product of the final (fp32) hidden state and the fp32 head
        expected = out.hidden_states[-1].float() @ model.lm_head.weight.T
    torch.testing.assert_close(out.logits.detach(), expected, atol=1e-5, rtol=0)
    out.logits.sum().backward()
    assert model.lm_head.weight.grad is not None and model.lm_head.weight.grad.abs().sum() > 0
    assert "lm_head.weight" in model.state_dict()  # names untouched
