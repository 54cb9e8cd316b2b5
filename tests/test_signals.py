"""SIGTERM (preemption) during a run: the step finishes, a checkpoint is written, metrics stay valid, the exit
status is 143, and the same command continues from that checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from conftest import SKYRL
from e2e_helpers import FAST


def _rows(run_dir) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_sigterm_stops_after_the_step_with_a_checkpoint_that_resumes(tiny_model_path, tmp_path):
    out = tmp_path / "run"
    args = [SKYRL, "run", "--env", "multiply", f"trainer.policy.model.path={tiny_model_path}",
            f"trainer.output_dir={out}", *FAST, "data.multiply.train_size=400", "trainer.ckpt_interval=1000",
            "trainer.algorithm.use_kl_loss=false"]
    process = subprocess.Popen([*args, "trainer.max_training_steps=100"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any(r.get("step", 0) >= 1 for r in _rows(out)):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=240)
    finally:
        process.kill()
    assert process.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    steps = [r["step"] for r in _rows(out)]
    last = steps[-1]
    assert steps == list(range(1, last + 1)) and last < 100
    assert (out / "ckpts" / "latest").read_text() == f"global_step_{last}"
    resumed = subprocess.run([*args, f"trainer.max_training_steps={last + 1}"], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [r["step"] for r in _rows(out)] == list(range(1, last + 2))


def test_a_killed_policy_worker_ends_the_run_naming_it(tiny_model_path, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [SKYRL, "run", "--env", "multiply", f"trainer.policy.model.path={tiny_model_path}",
         f"trainer.output_dir={out}", *FAST, "data.multiply.train_size=400", "trainer.ckpt_interval=1",
         "trainer.algorithm.use_kl_loss=false", "trainer.max_training_steps=100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any(r.get("step", 0) >= 1 for r in _rows(out)):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.5)
        pid = json.loads((out / "actors.json").read_text())["policy worker rank 0"]
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1, err[-3000:]
    assert time.monotonic() - killed < 60
    assert f"policy worker rank 0 (pid {pid}) died" in err and "Traceback" not in err
    assert "run the same command again to continue" in err
    steps = [r["step"] for r in _rows(out)]
    assert steps == list(range(1, len(steps) + 1))  # every metric row written before the fault is intact
