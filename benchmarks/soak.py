"""Soak test: a few hundred tiny GRPO steps, with the resident memory (RSS) of the driver and of every Ray actor
sampled over time; memory must stay flat after a warm-up.

Runs ``skyrl run --env multiply --algo grpo`` on the tiny random Qwen2 model (``skyrl model tiny``, as
``scripts/smoke.sh`` does) as a subprocess, with tiny steps (4 prompts x 4 samples x at most 16 new tokens, fp32,
one micro-batch, KL loss on: a policy worker, a ref worker and one engine), a checkpoint every
``--ckpt-interval`` steps (one kept) and no eval, in a Ray cluster of its own (``RAY_TMPDIR`` in the work
folder, so a cluster another process started with ``ray start`` is never joined). Every ``--every`` seconds it
reads the step count from ``metrics.jsonl`` and the RSS of the driver and of each actor listed in the run's
``actors.json`` (psutil); every sample is kept in ``samples.json`` in the work folder.

With ``--minutes M`` the run is stopped with SIGTERM after M minutes (it finishes its step and exits 143) and
the steps done so far are reported: as many steps as fit in that time.

Report, per process: RSS at the first sample after the warm-up (``--warmup`` steps), in the middle and at the end,
and the slope of a least-squares line of RSS against step over the samples after the warm-up, in MB per 100
steps. Verdict: ``flat`` when every process's slope is under ``--threshold`` MB per 100 steps, else ``GROWING``.

    .venv/bin/python benchmarks/soak.py --steps 300                   # about 3.5 minutes on 2 idle cores
    .venv/bin/python benchmarks/soak.py --steps 5000 --minutes 10     # as many steps as fit in 10 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

MB = 1e6
ROOT = Path(__file__).resolve().parent.parent
SKYRL = ROOT / ".venv" / "bin" / "skyrl"


def run_args(model: Path, run_dir: Path, steps: int, ckpt_interval: int) -> list[str]:
    return [str(SKYRL), "run", "--env", "multiply", "--algo", "grpo",
            f"trainer.policy.model.path={model}", f"trainer.output_dir={run_dir}",
            "data.multiply.num_digits=1", "data.multiply.train_size=512", "data.multiply.val_size=8",
            f"trainer.max_training_steps={steps}", "trainer.epochs=1000",
            "trainer.train_batch_size=4", "trainer.policy_mini_batch_size=4", "generator.n_samples_per_prompt=4",
            "generator.sampling_params.max_generate_length=16", "trainer.bf16=false", "trainer.eval_interval=0",
            "trainer.micro_train_batch_size_per_gpu=16", "trainer.micro_forward_batch_size_per_gpu=16",
            "trainer.gradient_checkpointing=false",
            f"trainer.ckpt_interval={ckpt_interval}", "trainer.max_ckpts_to_keep=1", "trainer.write_plots=false",
            "trainer.algorithm.use_kl_loss=true", "trainer.logger=console", "trainer.resume_mode=none"]


def steps_done(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return max((row.get("step", 0) for row in rows), default=0)


def rss(pid: int) -> float | None:
    """RSS in MB of a live process; None once it has exited (a zombie reports 0)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.memory_info().rss / MB or None
    except psutil.Error:
        return None


def sample(driver: int, run_dir: Path) -> dict[str, float]:
    """RSS in MB of the driver and every actor of ``actors.json`` (label -> pid)."""
    pids = {"driver": driver}
    actors = run_dir / "actors.json"
    if actors.is_file():
        pids.update(json.loads(actors.read_text()))
    found = {label: rss(pid) for label, pid in pids.items()}
    return {label: value for label, value in found.items() if value is not None}


def slope_per_100(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MB) against step, times 100."""
    n = len(points)
    if n < 2:
        return 0.0
    mx, my = sum(s for s, _ in points) / n, sum(r for _, r in points) / n
    var = sum((s - mx) ** 2 for s, _ in points)
    return 100 * sum((s - mx) * (r - my) for s, r in points) / var if var else 0.0


def report(samples: list[tuple[float, int, dict[str, float]]], warmup: int, threshold: float) -> bool:
    after = [(step, values) for _, step, values in samples if step >= warmup]
    labels = sorted({label for _, values in after for label in values}, key=lambda x: (x != "driver", x))
    print(f"{'process':<26}{'start MB':>10}{'middle MB':>11}{'end MB':>9}{'MB/100 steps':>14}  verdict")
    flat = True
    for label in labels:
        points = [(step, values[label]) for step, values in after if label in values]
        if not points:
            continue
        slope = slope_per_100(points)
        ok = slope < threshold
        flat &= ok
        print(f"{label:<26}{points[0][1]:>10.1f}{points[len(points) // 2][1]:>11.1f}{points[-1][1]:>9.1f}"
              f"{slope:>14.2f}  {'flat' if ok else 'GROWING'}")
    first, last = after[0][0] if after else 0, after[-1][0] if after else 0
    print(f"samples after warm-up: {len(after)} (steps {first}..{last}); threshold {threshold} MB per 100 steps")
    print(f"verdict: {'flat' if flat else 'GROWING'}")
    return flat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30, help="steps before the slope is measured")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--threshold", type=float, default=5.0, help="flat below this many MB per 100 steps")
    parser.add_argument("--ckpt-interval", type=int, default=50)
    parser.add_argument("--minutes", type=float, help="stop the run (SIGTERM) after this long and report the steps "
                        "done so far")
    parser.add_argument("--workdir", type=Path, help="keep the model, run folder and log here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="skyrl-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    model, run_dir = work / "model", work / "run"
    # its own Ray temp folder: a cluster another process started with `ray start` is never joined
    (work / "ray").mkdir(exist_ok=True)
    env = {**os.environ, "WANDB_MODE": "disabled", "RAY_TMPDIR": str(work / "ray")}
    subprocess.run([str(SKYRL), "model", "tiny", "--output-dir", str(model), "--arch", "qwen2", "--seed", "0"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    start = time.monotonic()
    samples: list[tuple[float, int, dict[str, float]]] = []
    with open(work / "soak.log", "w") as out:
        proc = subprocess.Popen(run_args(model, run_dir, args.steps, args.ckpt_interval), stdout=out,
                                stderr=subprocess.STDOUT, env=env)
        stopped = False
        while proc.poll() is None:
            samples.append((time.monotonic() - start, steps_done(run_dir), sample(proc.pid, run_dir)))
            if args.minutes and not stopped and time.monotonic() - start > 60 * args.minutes:
                proc.send_signal(signal.SIGTERM)  # skyrl finishes the step, checkpoints and exits with 143
                stopped = True
            time.sleep(args.every)
    elapsed = time.monotonic() - start
    if proc.returncode != (143 if stopped else 0):
        print(f"the run failed (exit {proc.returncode}); see {work / 'soak.log'}", file=sys.stderr)
        return 1
    (work / "samples.json").write_text(json.dumps([{"t": t, "step": step, "rss_mb": values}
                                                   for t, step, values in samples]))
    done = steps_done(run_dir)
    print(f"{done} steps in {elapsed:.0f} s ({elapsed / max(done, 1):.2f} s/step incl. start-up), "
          f"{len(samples)} samples, work folder {work}")
    return 0 if report(samples, args.warmup, args.threshold) else 1


if __name__ == "__main__":
    sys.exit(main())
