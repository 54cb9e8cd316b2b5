"""`skyrl run` through the real CLI: a plain-file plugin whose policy loss must reach the Ray workers."""

from __future__ import annotations

from e2e_helpers import FAST, read_metrics

PLAIN_PG = '''
from skyrl_core import register_policy_loss


@register_policy_loss("plain_pg_for_cli_test")
def plain_pg(*, log_probs, old_log_probs, advantages, loss_mask, config, **kw):
    """Vanilla policy gradient: -A * log pi."""
    return -advantages * log_probs, {"plain_pg_calls": 1.0}
'''


def test_run_with_a_plugin_file_loss_on_workers(skyrl_cli, tiny_model_path, tmp_path):
    plugin = tmp_path / "my_loss_for_cli_test.py"
    plugin.write_text(PLAIN_PG)
    out = tmp_path / "run"
    result = skyrl_cli(
        "run", "--env", "multiply", "--algo", "grpo", "--plugin", str(plugin),
        f"trainer.policy.model.path={tiny_model_path}", f"trainer.output_dir={out}", *FAST,
        "trainer.max_training_steps=2", "data.multiply.train_size=16", "data.multiply.val_size=4",
        "trainer.algorithm.policy_loss_type=plain_pg_for_cli_test",
        cwd=tmp_path, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [m for m in read_metrics(out) if "reward/mean" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert all(m["policy/plain_pg_calls"] == 1.0 for m in steps)
    assert "generator.backend=hf" in result.stderr  # the log says what auto chose and why
    assert "run folder:" in result.stderr


def test_plugin_file_with_a_misspelt_hook_exits_2(skyrl_cli, tmp_path):
    plugin = tmp_path / "misspelt_hook_plugin.py"
    plugin.write_text("from skyrl_core import hookimpl\n\n@hookimpl\ndef register_enviroments(register):\n    pass\n")
    result = skyrl_cli("config", "show", "--plugin", str(plugin))
    assert result.returncode == 2
    assert "register_enviroments" in result.stderr and "Traceback" not in result.stderr


def test_the_console_shows_skyrl_lines_and_actor_output_goes_to_logs(skyrl_cli, tiny_model_path, tmp_path):
    from e2e_helpers import FAST

    out = tmp_path / "run"
    result = skyrl_cli("run", "--env", "multiply", f"trainer.policy.model.path={tiny_model_path}",
                       f"trainer.output_dir={out}", *FAST, "trainer.max_training_steps=1",
                       "data.multiply.train_size=16", "data.multiply.val_size=4", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert "Loading weights" not in console and "pid=" not in console  # no progress bars, no Ray prefixes
    assert "Token authentication" not in console  # Ray's banner for a new local cluster
    assert "real_accelerator" not in console  # DeepSpeed's accelerator guess (transformers imports it)
    assert "run folder:" in console
    logs = out / "logs"
    assert (logs / "driver.log").is_file()
    assert (logs / "policy_worker_rank_0.log").is_file() and (logs / "inference_engine_0.log").is_file()
