#!/usr/bin/env python
"""Seconds per GRPO step: skyrl versus TRL's ``GRPOTrainer``, same tiny model, same batch, same machine.

What is compared
    One GRPO training step of each framework: generate 8 prompts x 4 samples x (up to) 32 new tokens, grade them
    with the ``multiply`` reward (1.0 when the ``\\boxed{}`` answer equals the product), compute group-normalised
    advantages, run one optimizer step (AdamW, lr 1e-6, weight decay 0.01, grad clip 1.0, no KL term), and, for
    skyrl, push the new weights to the inference engine. fp32 everywhere, no gradient checkpointing, the whole
    batch of 32 sequences in one micro-batch. Two random-weight Qwen2 models sharing one byte-level tokenizer and
    ChatML template (``skyrl_core.testing.tiny_model``):

    - ``10m``: ``skyrl model tiny --size small`` (hidden 256, 8 layers, 10.4M parameters);
    - ``25m``: the same tokenizer, hidden 384, 11 layers, 6 heads (2 KV heads), MLP 1536 (25.2M parameters).

How
    For each size, skyrl runs first, then TRL, never at the same time (on a 2-core machine any overlap would
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
    This entry point parses the arguments, runs both sides for each size, and prints the report; the rest lives
    next to it: ``bench_common.py`` (settings, model and data set-up, ``/proc`` CPU accounting, idle waiting) and
    ``bench_runs.py`` (the skyrl run and the TRL run, including the ``--trl-worker`` child's ``GRPOTrainer``).

Usage::

    .venv/bin/python benchmarks/grpo_step_vs_trl.py             # both sizes, 6 steps each (about 3 min)
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --quick     # 10m only, 3 steps: a smoke test
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --rounds 2  # each side twice, alternating: steadier ratio
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --sizes 25m --steps 8 --json out.json --workdir /tmp/bench
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

from bench_common import (
    NEW_TOKENS,
    PROMPTS,
    SAMPLES,
    SIZES,
    CpuMonitor,
    build_data,
    build_model,
    count_params,
    mean,
    median,
    versions,
)
from bench_runs import run_skyrl, run_trl, trl_worker

# -- statistics and report --------------------------------------------------------------------------------------


def pool(runs: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    """The steps of several runs of one framework in one list each, every run's first (warm-up) step dropped."""
    pooled: dict[str, Any] = {key: [] for key in ["steps", "windows", *keys]}
    for run in runs:
        warm = 1 if len(run["steps"]) > 1 else 0
        for key in pooled:
            values = list(run.get(key) or [])
            values += [None] * (len(run["steps"]) - len(values))
            pooled[key] += values[warm:]
    return pooled


def step_stats(runs: list[dict[str, Any]], parts: list[str], monitor: CpuMonitor, idle_cores: float
               ) -> dict[str, Any]:
    """Medians over the steps after each run's first: all of them, and the clean ones (others < ``idle_cores``)."""
    steps = pool(runs, parts)
    others = [monitor.others_cores(a, b) for a, b in steps["windows"]]
    every = list(range(len(steps["steps"])))
    clean = [i for i in every if others[i] is not None and others[i] < idle_cores]

    def pick(key: str, rows: list[int]) -> float | None:
        return median([steps[key][i] for i in rows])

    stats = {
        "n_steps": len(every), "n_clean": len(clean),
        "all": {key: pick(key, every) for key in ["steps", *parts]},
        "clean": {key: pick(key, clean) for key in ["steps", *parts]} if clean else None,
        "min_step": min(steps["steps"]) if steps["steps"] else None,
    }
    stats["best"] = stats["clean"] or stats["all"]
    for run in runs:
        run["others_cores"] = [monitor.others_cores(a, b) for a, b in run["windows"]]
    return stats


def summarize(size: str, params: int, sky_runs: list[dict[str, Any]], trl_runs: list[dict[str, Any]],
              monitor: CpuMonitor, idle_cores: float) -> dict[str, Any]:
    for run in trl_runs:
        run["train"] = [s - r for s, r in zip(run["steps"], run.get("rollout") or [])]
    for run in sky_runs:
        run["other"] = [None if None in (s, g, t, w) else s - g - t - w
                        for s, g, t, w in zip(run["steps"], run["generate"], run["train"], run["weight_sync"])]
    s = step_stats(sky_runs, ["generate", "train", "weight_sync", "other"], monitor, idle_cores)
    t = step_stats(trl_runs, ["rollout", "generate", "train"], monitor, idle_cores)
    basis = "clean" if s["clean"] is not None and t["clean"] is not None else "all"
    s_step, t_step = s[basis]["steps"], t[basis]["steps"]
    s_all, t_all = s["all"]["steps"], t["all"]["steps"]
    return {
        "size": size, "params": params, "basis": basis,
        "skyrl_s_per_step": s_step, "trl_s_per_step": t_step,
        "ratio": s_step / t_step if s_step and t_step else None,
        "ratio_all_steps": s_all / t_all if s_all and t_all else None,
        "skyrl": s, "trl": t,
        "skyrl_completion_length": mean([r["completion_length"] for r in sky_runs if r["completion_length"]]),
        "trl_completion_length": mean([r["completion_length"] for r in trl_runs if r["completion_length"]]),
        "skyrl_wall_s": median([r["wall_s"] for r in sky_runs]),
        "trl_wall_s": median([r["wall_s"] for r in trl_runs]),
        "skyrl_runs": sky_runs, "trl_runs": trl_runs,
    }


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(rows: list[dict[str, Any]], steps: int, rounds: int, threads: int, idle_cores: float,
                 found: dict[str, str]) -> None:
    print()
    print(", ".join(f"{name} {version}" for name, version in found.items()))
    print(f"GRPO step: {PROMPTS} prompts x {SAMPLES} samples x {NEW_TOKENS} new tokens, fp32, CPU, "
          f"{os.cpu_count()} cores, torch threads {threads}; {rounds} run(s) per framework, steps 2..{steps} of "
          f"each; 'clean' = steps during "
          f"which other processes used < {idle_cores} cores")
    head = (f"{'size':<5} {'params':>7} {'skyrl s/step':>12} {'trl s/step':>10} {'skyrl/trl':>9} {'from':>7} "
            f"{'clean sky/trl':>13} {'all-steps ratio':>15}")
    print(head)
    print("-" * len(head))
    for r in rows:
        s, t = r["skyrl"], r["trl"]
        print(f"{r['size']:<5} {r['params'] / 1e6:>6.1f}M {_fmt(r['skyrl_s_per_step']):>12} "
              f"{_fmt(r['trl_s_per_step']):>10} {_fmt(r['ratio']):>9} {r['basis']:>7} "
              f"{str(s['n_clean']) + '/' + str(s['n_steps']) + ' ' + str(t['n_clean']) + '/' + str(t['n_steps']):>13} "
              f"{_fmt(r['ratio_all_steps']):>15}")
    print()
    print("where the time goes (medians in s over the same steps as above):")
    head = (f"{'size':<5} {'sky gen':>8} {'sky train':>9} {'sky sync':>8} {'sky other':>9} {'trl rollout':>11} "
            f"{'trl gen':>8} {'trl train':>9} {'len sky/trl':>11} {'min sky/trl':>11} {'wall sky/trl':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        s, t = r["skyrl"]["best"], r["trl"]["best"]
        print(f"{r['size']:<5} {_fmt(s['generate']):>8} {_fmt(s['train']):>9} {_fmt(s['weight_sync']):>8} "
              f"{_fmt(s['other']):>9} {_fmt(t['rollout']):>11} {_fmt(t['generate']):>8} {_fmt(t['train']):>9} "
              f"{_fmt(r['skyrl_completion_length'], '.1f') + '/' + _fmt(r['trl_completion_length'], '.1f'):>11} "
              f"{_fmt(r['skyrl']['min_step']) + '/' + _fmt(r['trl']['min_step']):>11} "
              f"{_fmt(r['skyrl_wall_s'], '.0f') + '/' + _fmt(r['trl_wall_s'], '.0f'):>12}")
    print()
    print("sky gen/train/sync: skyrl's timing/generate, timing/train (advantages + update, plus an old-log-prob "
          "forward when off-policy), timing/weight_sync; sky other: the rest of timing/step (engine sleep, batch).")
    print("trl rollout: generate + reward + advantages; trl gen: model.generate alone; trl train: step - rollout. "
          "len: mean completion tokens; min: fastest step; wall: whole subprocess, start-up included.")
    for r in rows:
        for name in ("skyrl", "trl"):
            for i, run in enumerate(r[f"{name}_runs"]):
                others = [None if x is None else round(x, 2) for x in run["others_cores"]]
                print(f"{r['size']} {name:<5} run {i + 1}: per-step s {_rounded(run['steps'])}, others' cores {others}")
                if name == "skyrl":
                    print(f"{'':>{len(r['size'])}} {'':<5}        generate/train/weight_sync s "
                          f"{_zip_rounded(run['generate'], run['train'], run['weight_sync'])}")
                else:
                    print(f"{'':>{len(r['size'])}} {'':<5}        generate/rollout/train s "
                          f"{_zip_rounded(run['generate'], run['rollout'], run['train'])}")


def _rounded(values: list[float | None]) -> list[float | None]:
    return [None if x is None else round(x, 2) for x in values]


def _zip_rounded(*series: list[float | None]) -> list[tuple[float | None, ...]]:
    return [tuple(None if x is None else round(x, 2) for x in row) for row in zip(*series)]


# -- main -------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10m,25m", help=f"comma-separated model sizes from {sorted(SIZES)}")
    parser.add_argument("--steps", type=int, default=6, help="training steps per framework; the first is warm-up")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per framework and size, alternating which goes first; their steps are pooled")
    parser.add_argument("--quick", action="store_true", help="smoke test: only 10m, 3 steps, 1 round")
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
        parser.error(f"unknown size(s) {unknown}; choose from {sorted(SIZES)}")
    if args.steps < 2 and not args.trl_worker:
        parser.error("--steps must be at least 2 (the first step is a warm-up)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


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

    rows = []
    try:
        train_file = build_data(root / "data", args.steps)
        for size in args.sizes:
            workdir = root / size
            workdir.mkdir(parents=True, exist_ok=True)
            model = build_model(workdir / "model", SIZES[size])
            params = count_params(model)
            print(f"[{size}] {params / 1e6:.1f}M parameters in {model}", flush=True)
            runs: dict[str, list[dict[str, Any]]] = {"skyrl": [], "trl": []}
            for round_ in range(args.rounds):
                tag = f"_{round_ + 1}" if args.rounds > 1 else ""
                # Alternate the order between rounds so a slow drift of the machine's speed does not favour a side.
                for name in ("skyrl", "trl") if round_ % 2 == 0 else ("trl", "skyrl"):
                    settle(name)
                    if name == "skyrl":
                        result = run_skyrl(model, train_file, workdir, args.steps, args.timeout, tag)
                    else:
                        result = run_trl(model, train_file, workdir, args.steps, threads, args.timeout, tag)
                    runs[name].append(result)
                    print(f"[{size}] {name:<5} s/step {_rounded(result['steps'])}", flush=True)
            rows.append(summarize(size, params, runs["skyrl"], runs["trl"], monitor, args.idle_cores))
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not args.workdir:
            print("(rerun with --workdir DIR to keep the logs)", file=sys.stderr)
        return 1
    finally:
        monitor.stop()
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    print_report(rows, args.steps, args.rounds, threads, args.idle_cores, found)
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "rounds": args.rounds, "threads": threads,
                                               "cpus": os.cpu_count(),
                                               "idle_cores": args.idle_cores, "versions": found, "results": rows},
                                              indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
