"""Faults during a run, from outside. SIGTERM (preemption): the step finishes, a checkpoint is written, metrics stay
valid, the exit status is 143, and the same command continues from that checkpoint. A killed worker or engine:
the run ends within seconds naming it, with exit status 1, and what was written stays valid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
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


def _kill_during_a_run(model, out, label: str) -> tuple[int, int, str, float]:
    """Start a long run, SIGKILL the actor ``label`` (from actors.json) after step 1; (pid, exit status, stderr,
    seconds from the kill to the exit)."""
    process = subprocess.Popen(
        [SKYRL, "run", "--env", "multiply", f"trainer.policy.model.path={model}", f"trainer.output_dir={out}",
         *FAST, "data.multiply.train_size=400", "trainer.ckpt_interval=1", "trainer.algorithm.use_kl_loss=false",
         "trainer.max_training_steps=100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any(r.get("step", 0) >= 1 for r in _rows(out)):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.5)
        pid = json.loads((out / "actors.json").read_text())[label]["pid"]
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        _, err = process.communicate(timeout=120)
        return pid, process.returncode, err, time.monotonic() - killed
    finally:
        process.kill()


@pytest.mark.parametrize("label", ["policy worker rank 0", "inference engine 0"])
def test_a_killed_worker_or_engine_ends_the_run_naming_it(tiny_model_path, tmp_path, label):
    out = tmp_path / "run"
    pid, status, err, seconds = _kill_during_a_run(tiny_model_path, out, label)
    assert status == 1, err[-3000:]
    assert seconds < 60
    assert f"{label} (pid {pid}) died" in err and "Traceback" not in err
    assert "run the same command again to continue" in err
    steps = [r["step"] for r in _rows(out)]
    assert steps == list(range(1, len(steps) + 1))  # every metric row written before the fault is intact
    latest = (out / "ckpts" / "latest").read_text()
    assert (out / "ckpts" / latest / "trainer_state.json").is_file()  # the last checkpoint is complete
