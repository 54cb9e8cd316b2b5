#!/usr/bin/env python
"""Seconds per GRPO step: skyrl versus TRL's ``GRPOTrainer``, same model, same batch, same machine (issue 13).

What is compared
    One GRPO training step of each framework: generate 8 prompts x 4 samples x (up to) 32 new tokens, grade them
    with the ``multiply`` reward (1.0 when the ``\\boxed{}`` answer equals the product), compute group-normalised
    advantages, run one optimizer step (AdamW, lr 1e-6, weight decay 0.01, grad clip 1.0, no KL term), and, for
    skyrl, push the new weights to the inference engine. No gradient checkpointing, the whole batch of 32
    sequences in one micro-batch. Three random-weight Qwen2 models sharing one byte-level tokenizer (1,863 tokens)
    and ChatML template (``skyrl_core.testing.tiny_model``):

    - ``10m``: ``skyrl model tiny --size small`` (hidden 256, 8 layers, 10.4M parameters);
    - ``25m``: the same tokenizer, hidden 384, 11 layers, 6 heads (2 KV heads), MLP 1536 (25.2M parameters);
    - ``135m``: the shape of SmolLM2-135M: hidden 576, 30 layers, 9 heads (3 KV heads), MLP 1536, vocabulary
      49,152, tied embeddings (134.5M parameters). The tokenizer keeps its 1,863 tokens: sampled ids above them
      decode to nothing on both sides (neither crashes), which does not change the work of a step.

    Two modes (``--mode``, default both), each a table of its own:

    - ``equal``: fp32 on both sides (``trainer.bf16=false``; TRL ``bf16=False``);
    - ``best``: each side's fastest correct settings: skyrl ``trainer.bf16=true`` (bf16 autocast training, fp32
      master weights) with ``generator.model_dtype=bfloat16`` (its ``hf`` engine runs the linear layers in bf16);
      TRL ``bf16=True`` (autocast). Of TRL's other ``GRPOConfig`` speed fields, ``use_liger_kernel`` needs
      ``liger-kernel`` (Triton, GPU only; not installed) and ``torch_compile=True`` works on CPU but spent about
      5 minutes compiling its first step at 10m and was not faster afterwards (on a loaded machine), so neither
      is used; ``bench_runs.TRL_MODES`` holds the fields.

    Besides seconds, each run reports its peak memory and each phase its fraction of the machine's matmul peak:

    - memory: the summed PSS (``/proc/PID/smaps_rollup``) of the side's process tree, sampled every second,
      peak over the timed steps; for skyrl also per group (driver, ``TrainWorker``, ``EngineActor``, Ray's own
      processes). PSS, not RSS, because skyrl's processes share the torch libraries (``bench_measure.py``);
    - matmul peak: ``torch.mm`` of 2048 x 2048 matrices, fp32 and bf16, at the runs' thread count, best of 5,
      measured by this script before the runs; per phase (skyrl: generate, ref/old log-probs when a run logs
      them, train, weight sync, other; TRL: generate, rest of the rollout, train), seconds and FLOPs / s / peak
      (the fp32 peak in ``equal`` mode, bf16 in ``best``), with the FLOPs model of ``bench_measure.py``:
      forward = 2 x (non-embedding parameters x tokens + LM-head parameters x positions with logits), training =
      3 x forward, generation = one forward over prompt + completion tokens.

    Issue 13's targets are printed with PASS/MISS and the margin: ``equal`` skyrl/TRL <= 0.67 at every size,
    ``best`` TRL/skyrl >= 3 at ``135m``, and skyrl's peak PSS <= TRL's at ``135m``.

How
    For each size and mode, skyrl runs first, then TRL, never at the same time (on a 2-core machine any overlap would
    dominate the numbers); with ``--rounds N`` each framework runs N times, the order alternating between rounds
    (skyrl-TRL, TRL-skyrl, ...), and the steps of all rounds are pooled:

    - skyrl: ``python -m skyrl_core.cli.main run --env multiply --algo grpo ...`` in a subprocess (a fresh local
      Ray cluster: driver, one ``ddp`` policy worker, one ``hf`` inference engine, CPU weight sync). Per-step
      times come from the run's ``metrics.jsonl``: ``timing/step`` and its parts ``timing/generate``,
      ``timing/train`` (old log-probs, advantages, update) and ``timing/weight_sync``.
    - TRL: this script re-runs itself with ``--trl-worker SPEC.json`` in a subprocess: ``torch.set_num_threads``
      equal to skyrl's per-actor share (``os.cpu_count()`` with one policy worker and one engine), ``GRPOTrainer``
      on the same parquet prompts (conversational, so TRL applies the same chat template),
      ``per_device_train_batch_size = 32`` completions, ``num_generations = 4``, ``steps_per_generation = 1``,
      ``beta = 0``, ``use_cpu``, ``optim = adamw_torch`` (skyrl's ``torch.optim.AdamW``), constant LR, and a
      reward function that calls skyrl's own ``MultiplyEnv``. A ``TrainerCallback`` times each step from
      ``on_step_begin`` to ``on_step_end``; ``_generate_and_score_completions`` (generation, reward, advantages)
      and ``_generate_single_turn`` (``model.generate`` only) are wrapped to time the rollout part.

    The first step of each run is a warm-up and is dropped; the figures are medians over the remaining steps. The
    ratio is ``skyrl / trl`` seconds per step (below 1: skyrl is faster). Start-up (Ray, model loading) is not in
    the per-step figures; the total wall time of each subprocess is printed as well.

Shared machines
    Other processes on the machine slow both sides by far more than their share of the CPU (torch's OpenMP
    threads wait for each other at every op, so one descheduled thread stalls the rest): on 2 cores, a 1-second
    step can take 15 s while another test suite runs. So the script

    - waits, before each run, until the rest of the machine has used less than ``--idle-cores`` cores for 5 s
      (at most ``--wait-idle`` seconds, then it goes on and says so);
    - samples ``/proc`` every 0.5 s during the runs and charges each step with the CPU that processes outside this
      benchmark's process tree used during it (``others`` = machine busy time minus this tree's);
    - reports, per framework, the median over the *clean* steps (others below ``--idle-cores`` cores) next to the
      median over all steps, and computes the ratio from the clean medians when both sides have clean steps.

    Compare numbers only from runs with clean steps; rerun (or raise ``--steps``) when a side has none. Even on an
    idle machine (a VM here), the speed of both sides drifts by 10-30% over minutes; ``--rounds 2`` or more, which
    alternates the order, makes the ratio steadier than the absolute seconds.

Caveats
    - Old log-probs: with one mini-batch and one epoch per batch (this benchmark), TRL uses the training forward's
      own detached log-probs as the "old" ones. skyrl does the same whenever ``update_epochs_per_batch == 1`` and
      ``policy_mini_batch_size == train_batch_size`` (``Trainer._on_policy``, since commit 42c6242); before that it
      ran a separate no-grad forward over the batch, inside ``timing/train``. The report prints the skyrl commit
      it measured for that reason.
    - Weight sync: skyrl's inference engine is a separate actor with its own copy of the weights, so every step
      pays ``timing/weight_sync``; TRL generates with the training model itself and has no such cost.
    - Generation: skyrl's ``hf`` engine drops finished rows from the batch; TRL's ``model.generate`` keeps decoding
      finished rows until every row is done. Random tiny models rarely sample EOS, so almost every completion has
      32 tokens; the mean completion length of both sides is printed to show it.
    - Sampling is random (temperature 1, different RNG streams): the two sides see identically distributed, not
      identical, completions.
    - ``RAY_ADDRESS`` is removed from skyrl's environment so it always starts its own local cluster.

Files
    This entry point parses the arguments, measures the matmul peak, runs both sides for each size and mode, and
    prints the report; the rest lives next to it: ``bench_common.py`` (settings, model and data set-up, ``/proc``
    CPU accounting, idle waiting), ``bench_runs.py`` (the skyrl run and the TRL run, including the
    ``--trl-worker`` child's ``GRPOTrainer``, and the modes' settings), ``bench_measure.py`` (PSS sampling,
    matmul peak, FLOPs model) and ``bench_report.py`` (statistics, tables, targets).

Usage::

    .venv/bin/python benchmarks/grpo_step_vs_trl.py --steps 4   # 3 sizes x 2 modes (135m: ~2.5 min per run)
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --quick     # 10m only, 3 steps, both modes: a smoke test
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --quick --mode equal   # the same, fp32 only
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --rounds 2  # each side twice, alternating: steadier ratio
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --sizes 25m --mode best --json out.json --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_common import SIZES, CpuMonitor, build_data, build_model, count_params, prompt_tokens, versions
from bench_measure import matmul_peak
from bench_report import _fmt, _rounded, print_report, summarize
from bench_runs import TRL_MODES, run_skyrl, run_trl, trl_worker

MODES = ("equal", "best")

# -- main -------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10m,25m,135m", help=f"comma-separated model sizes from {list(SIZES)}")
    parser.add_argument("--mode", choices=[*MODES, "both"], default="both",
                        help="equal: fp32 on both sides; best: each side's fastest correct settings; both: each")
    parser.add_argument("--no-peak", action="store_true", help="skip the matmul-peak measurement")
    parser.add_argument("--steps", type=int, default=6, help="training steps per framework; the first is warm-up")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per framework and size, alternating which goes first; their steps are pooled")
    parser.add_argument("--quick", action="store_true", help="smoke test: only 10m, 3 steps, 1 round (any --mode)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the TRL process (default: os.cpu_count(), as skyrl gives its actors)")
    parser.add_argument("--idle-cores", type=float, default=0.1,
                        help="a step is clean when other processes used fewer cores than this during it")
    parser.add_argument("--wait-idle", type=float, default=300,
                        help="seconds to wait at most, before each run, for the machine to be that idle (0: don't)")
    parser.add_argument("--workdir", default=None, help="keep models, data, logs and runs here (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this file")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per framework run")
    parser.add_argument("--trl-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.steps, args.rounds = "10m", 3, 1
    args.sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {list(SIZES)}")
    args.modes = list(MODES) if args.mode == "both" else [args.mode]
    if args.steps < 2 and not args.trl_worker:
        parser.error("--steps must be at least 2 (the first step is a warm-up)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def write_json(args: argparse.Namespace, threads: int, found: dict[str, str], peaks: dict[str, float] | None,
               rows: list[dict[str, Any]]) -> None:
    Path(args.json).write_text(json.dumps({"steps": args.steps, "rounds": args.rounds, "threads": threads,
                                           "cpus": os.cpu_count(), "matmul_peak_gflops": peaks,
                                           "idle_cores": args.idle_cores, "versions": found, "results": rows},
                                          indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trl_worker:
        trl_worker(args.trl_worker)
        return 0
    threads = args.threads or os.cpu_count() or 1
    found = versions()  # before the runs: the checkout may change while they go on
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="grpo_vs_trl_"))
    root.mkdir(parents=True, exist_ok=True)
    monitor = CpuMonitor().start()
    if not monitor.available:
        print("no /proc: cannot tell clean steps from loaded ones; all steps count", flush=True)

    def settle(what: str) -> None:
        if args.wait_idle > 0 and monitor.available:
            waited, cores = monitor.wait_idle(args.idle_cores, args.wait_idle)
            note = "" if cores is not None and cores < args.idle_cores else " (still busy, going on)"
            print(f"  waited {waited:.0f}s for an idle machine before {what}: others at {_fmt(cores)} cores{note}",
                  flush=True)

    rows: list[dict[str, Any]] = []
    peaks = None
    try:
        if not args.no_peak:
            settle("the matmul peak")
            peaks = matmul_peak(threads)
            print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s", flush=True)
        train_file = build_data(root / "data", args.steps)
        for size in args.sizes:
            workdir = root / size
            workdir.mkdir(parents=True, exist_ok=True)
            model = build_model(workdir / "model", SIZES[size])
            params = count_params(model)
            prompt_len = prompt_tokens(model, train_file)
            print(f"[{size}] {params / 1e6:.1f}M parameters in {model}", flush=True)
            for mode in args.modes:
                runs: dict[str, list[dict[str, Any]]] = {"skyrl": [], "trl": []}
                for round_ in range(args.rounds):
                    tag = f"_{mode}" + (f"_{round_ + 1}" if args.rounds > 1 else "")
                    # Alternate the order between rounds so a drift of the machine's speed favours neither side.
                    for name in ("skyrl", "trl") if round_ % 2 == 0 else ("trl", "skyrl"):
                        settle(f"{name} ({mode})")
                        if name == "skyrl":
                            result = run_skyrl(model, train_file, workdir, args.steps, args.timeout, tag, mode)
                        else:
                            result = run_trl(model, train_file, workdir, args.steps, threads, args.timeout, tag,
                                             mode)
                        runs[name].append(result)
                        mem = (result.get("memory") or {}).get("total")
                        print(f"[{size} {mode}] {name:<5} s/step {_rounded(result['steps'])}, "
                              f"peak PSS {_fmt(mem, '.0f')} MB", flush=True)
                peak = peaks and peaks["fp32" if mode == "equal" else "bf16"]
                rows.append(summarize(size, params, mode, runs["skyrl"], runs["trl"], monitor, args.idle_cores,
                                      model, prompt_len, peak))
                if args.json:  # after every size and mode, so that an interrupted run leaves what finished
                    write_json(args, threads, found, peaks, rows)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not args.workdir:
            print("(rerun with --workdir DIR to keep the logs)", file=sys.stderr)
        if rows:
            print("the sizes and modes that finished:", file=sys.stderr)
            print_report(rows, args.steps, args.rounds, threads, args.idle_cores, found, peaks, TRL_MODES["best"])
        return 1
    finally:
        monitor.stop()
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    print_report(rows, args.steps, args.rounds, threads, args.idle_cores, found, peaks, TRL_MODES["best"])
    if args.json:
        write_json(args, threads, found, peaks, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
