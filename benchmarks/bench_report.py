"""The statistics and the printed report of ``grpo_step_vs_trl.py``.

- ``summarize``: one size in one mode: medians over the timed steps (all, and clean), per-phase seconds and their
  fraction of the matmul peak (``bench_measure.model_flops``), the peak PSS of each side;
- ``print_report``: per mode, the s/step table, the per-phase table and the memory table; then issue 13's targets
  with PASS/MISS and the margin; then every step of every run.

Imported as a top-level module: ``grpo_step_vs_trl.py``'s folder is on ``sys.path`` when it runs as a script.
"""

from __future__ import annotations

import os
from typing import Any

from bench_common import NEW_TOKENS, PROMPTS, ROWS, SAMPLES, CpuMonitor, mean, median
from bench_measure import model_flops

#: Issue 13's targets: skyrl/TRL s/step at most this in ``equal`` mode (every size); TRL/skyrl at least this in
#: ``best`` mode at ``BEST_SIZE``; skyrl's peak PSS at most TRL's at ``BEST_SIZE``.
EQUAL_MAX_RATIO, BEST_MIN_SPEEDUP, BEST_SIZE = 0.67, 3.0, "135m"
MODE_TEXT = {"equal": "fp32 on both sides",
             "best": "skyrl trainer.bf16=true + bfloat16 engine; TRL bf16=True autocast"}
SKY_PARTS = ["generate", "logprobs", "train", "weight_sync", "other"]
TRL_PARTS = ["generate", "rest", "rollout", "train"]

# -- statistics -------------------------------------------------------------------------------------------------


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


def _memory(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Per key (``total`` and each process group), the highest peak MB over the runs."""
    peaks: dict[str, float] = {}
    for run in runs:
        for key, mb in (run.get("memory") or {}).items():
            peaks[key] = max(peaks.get(key, 0.0), mb)
    return peaks


def _fractions(stats: dict[str, Any], flops: dict[str, float], phases: dict[str, str], peak: float
               ) -> dict[str, float | None]:
    """Per phase: FLOPs / median seconds / peak (GFLOP/s), for the phases that have FLOPs."""
    found: dict[str, float | None] = {}
    for part, kind in phases.items():
        seconds = stats.get(part)
        found[part] = flops[kind] / seconds / (peak * 1e9) if seconds and kind in flops else None
    return found


def summarize(size: str, params: int, mode: str, sky_runs: list[dict[str, Any]], trl_runs: list[dict[str, Any]],
              monitor: CpuMonitor, idle_cores: float, model: Any, prompt_len: float, peak: float | None
              ) -> dict[str, Any]:
    for run in trl_runs:
        run["train"] = [s - r for s, r in zip(run["steps"], run.get("rollout") or [])]
        run["rest"] = [r - g for r, g in zip(run.get("rollout") or [], run.get("generate") or [])]
    for run in sky_runs:
        run["other"] = [None if None in (s, g, t, w) else s - g - t - w - (lp or 0.0)
                        for s, g, t, w, lp in zip(run["steps"], run["generate"], run["train"], run["weight_sync"],
                                                  run.get("logprobs") or [None] * len(run["steps"]))]
    s = step_stats(sky_runs, SKY_PARTS, monitor, idle_cores)
    t = step_stats(trl_runs, TRL_PARTS, monitor, idle_cores)
    basis = "clean" if s["clean"] is not None and t["clean"] is not None else "all"
    s_step, t_step = s[basis]["steps"], t[basis]["steps"]
    s_all, t_all = s["all"]["steps"], t["all"]["steps"]
    sky_len = mean([r["completion_length"] for r in sky_runs if r["completion_length"]]) or NEW_TOKENS
    trl_len = mean([r["completion_length"] for r in trl_runs if r["completion_length"]]) or NEW_TOKENS
    sky_flops = model_flops(model, prompt_len, sky_len, ROWS)
    trl_flops = model_flops(model, prompt_len, trl_len, ROWS)
    # One forward per logged ref/old log-prob key (on-policy steps without KL have none).
    n_logprob = max((len(r.get("logprob_keys") or []) for r in sky_runs), default=0)
    sky_flops["logprobs"] = n_logprob * sky_flops["forward"]
    sky_flops["steps"] = sky_flops["generate"] + sky_flops["logprobs"] + sky_flops["train"]
    trl_flops["steps"] = trl_flops["generate"] + trl_flops["train"]
    fractions = None
    if peak:
        fractions = {
            "skyrl": _fractions(s["best"], sky_flops, {"generate": "generate", "logprobs": "logprobs",
                                                       "train": "train", "steps": "steps"}, peak),
            "trl": _fractions(t["best"], trl_flops, {"generate": "generate", "train": "train", "steps": "steps"},
                              peak),
        }
    return {
        "size": size, "params": params, "mode": mode, "basis": basis,
        "skyrl_s_per_step": s_step, "trl_s_per_step": t_step,
        "ratio": s_step / t_step if s_step and t_step else None,
        "ratio_all_steps": s_all / t_all if s_all and t_all else None,
        "skyrl": s, "trl": t, "peak_gflops": peak, "fractions": fractions,
        "flops": {"skyrl": sky_flops, "trl": trl_flops, "prompt_tokens": prompt_len},
        "skyrl_memory": _memory(sky_runs), "trl_memory": _memory(trl_runs),
        "skyrl_completion_length": sky_len, "trl_completion_length": trl_len,
        "skyrl_wall_s": median([r["wall_s"] for r in sky_runs]),
        "trl_wall_s": median([r["wall_s"] for r in trl_runs]),
        "skyrl_logprob_keys": sorted({k for r in sky_runs for k in r.get("logprob_keys") or []}),
        "skyrl_runs": sky_runs, "trl_runs": trl_runs,
    }


# -- report -----------------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(head: str) -> None:
    print(head)
    print("-" * len(head))


def print_report(rows: list[dict[str, Any]], steps: int, rounds: int, threads: int, idle_cores: float,
                 found: dict[str, str], peaks: dict[str, float] | None, trl_best: dict[str, Any]) -> None:
    print()
    print(", ".join(f"{name} {version}" for name, version in found.items()))
    print(f"GRPO step: {PROMPTS} prompts x {SAMPLES} samples x {NEW_TOKENS} new tokens, CPU, {os.cpu_count()} cores, "
          f"torch threads {threads}; {rounds} run(s) per framework, steps 2..{steps} of each; 'clean' = steps "
          f"during which other processes used < {idle_cores} cores")
    if peaks:
        print(f"matmul peak (torch.mm 2048x2048, {threads} threads, best of 5): fp32 {peaks['fp32']:.0f} GFLOP/s, "
              f"bf16 {peaks['bf16']:.0f} GFLOP/s")
    for mode in dict.fromkeys(r["mode"] for r in rows):
        text = MODE_TEXT[mode] + (f" {trl_best}" if mode == "best" and trl_best else "")
        _print_mode(mode, text, [r for r in rows if r["mode"] == mode])
    print_targets(rows)
    print()
    print("every step (s), with the cores other processes used during it:")
    for r in rows:
        for name in ("skyrl", "trl"):
            for i, run in enumerate(r[f"{name}_runs"]):
                others = [None if x is None else round(x, 2) for x in run["others_cores"]]
                print(f"{r['mode']} {r['size']} {name:<5} run {i + 1}: per-step s {_rounded(run['steps'])}, "
                      f"others' cores {others}")
                if name == "skyrl":
                    print(f"{'':>{len(r['mode'] + r['size']) + 1}} {'':<5}        generate/train/weight_sync s "
                          f"{_zip_rounded(run['generate'], run['train'], run['weight_sync'])}")
                else:
                    print(f"{'':>{len(r['mode'] + r['size']) + 1}} {'':<5}        generate/rollout/train s "
                          f"{_zip_rounded(run['generate'], run['rollout'], run['train'])}")


def _print_mode(mode: str, text: str, rows: list[dict[str, Any]]) -> None:
    print()
    print(f"== mode {mode}: {text}")
    _table(f"{'size':<5} {'params':>7} {'skyrl s/step':>12} {'trl s/step':>10} {'skyrl/trl':>9} {'trl/skyrl':>9} "
           f"{'from':>6} {'clean sky/trl':>13} {'all-steps ratio':>15}")
    for r in rows:
        s, t = r["skyrl"], r["trl"]
        clean = f"{s['n_clean']}/{s['n_steps']} {t['n_clean']}/{t['n_steps']}"
        print(f"{r['size']:<5} {r['params'] / 1e6:>6.1f}M {_fmt(r['skyrl_s_per_step']):>12} "
              f"{_fmt(r['trl_s_per_step']):>10} {_fmt(r['ratio']):>9} "
              f"{_fmt(1 / r['ratio'] if r['ratio'] else None):>9} {r['basis']:>6} {clean:>13} "
              f"{_fmt(r['ratio_all_steps']):>15}")
    dtype = "fp32" if mode == "equal" else "bf16"
    peak = rows[0]["peak_gflops"]
    print(f"per phase: median s over the same steps, and % of the {dtype} matmul peak "
          f"({_fmt(peak, '.0f')} GFLOP/s) that the phase's FLOPs reach")
    _table(f"{'size':<5} {'side':<5} {'generate':>14} {'logp | rest':>11} {'train':>14} {'sync':>6} {'other':>6} "
           f"{'step':>14} {'len':>5} {'min':>6} {'wall':>5}")
    for r in rows:
        for side in ("skyrl", "trl"):
            b, f = r[side]["best"], (r["fractions"] or {}).get(side, {})
            mid = (f"{_fmt(b['logprobs'])} {_pct(f.get('logprobs'))}" if side == "skyrl" and b["logprobs"]
                   else "-" if side == "skyrl" else _fmt(b["rest"]))
            print(f"{r['size']:<5} {side:<5} {_fmt(b['generate']) + ' ' + _pct(f.get('generate')):>14} {mid:>11} "
                  f"{_fmt(b['train']) + ' ' + _pct(f.get('train')):>14} "
                  f"{_fmt(b.get('weight_sync')) if side == 'skyrl' else '-':>6} "
                  f"{_fmt(b.get('other')) if side == 'skyrl' else '-':>6} "
                  f"{_fmt(b['steps']) + ' ' + _pct(f.get('steps')):>14} "
                  f"{_fmt(r[side + '_completion_length'], '.1f'):>5} {_fmt(r[side]['min_step']):>6} "
                  f"{_fmt(r[side + '_wall_s'], '.0f'):>5}")
    print("peak PSS during the timed steps, MB (skyrl: driver + every Ray process it started; TRL: its process)")
    _table(f"{'size':<5} {'skyrl':>7} {'trl':>7} {'sky/trl':>7} {'driver':>7} {'policy':>7} {'engine':>7} "
           f"{'ray other':>9}")
    for r in rows:
        sm, tm = r["skyrl_memory"], r["trl_memory"]
        ratio = sm["total"] / tm["total"] if sm.get("total") and tm.get("total") else None
        print(f"{r['size']:<5} {_fmt(sm.get('total'), '.0f'):>7} {_fmt(tm.get('total'), '.0f'):>7} "
              f"{_fmt(ratio):>7} {_fmt(sm.get('driver'), '.0f'):>7} {_fmt(sm.get('TrainWorker'), '.0f'):>7} "
              f"{_fmt(sm.get('EngineActor'), '.0f'):>7} {_fmt(sm.get('ray daemons'), '.0f'):>9}")
    keys = sorted({k for r in rows for k in r["skyrl_logprob_keys"]})
    print("skyrl: generate = timing/generate (rollouts + reward); logp = ref/old log-prob forwards "
          f"({', '.join(keys) if keys else 'none logged: on-policy steps without KL have none'}); train = "
          "timing/train minus those (advantages + update); sync = timing/weight_sync; other = rest of timing/step.")
    print("trl: generate = model.generate; rest = rest of _generate_and_score_completions (reward, advantages); "
          "train = step - rollout. step % = the step's FLOPs over the whole step. len: mean completion tokens; "
          "min: fastest step; wall: whole subprocess, start-up included. Group peaks need not coincide.")


def print_targets(rows: list[dict[str, Any]]) -> None:
    print()
    print("issue 13 targets:")
    for r in rows:
        ratio = r["ratio"]
        if r["mode"] == "equal" and ratio:
            ok = ratio <= EQUAL_MAX_RATIO
            margin = (f"{EQUAL_MAX_RATIO - ratio:.2f} to spare" if ok else
                      f"over by {ratio - EQUAL_MAX_RATIO:.2f}: skyrl needs {100 * (1 - EQUAL_MAX_RATIO / ratio):.0f}% "
                      "less time per step")
            print(f"  equal {r['size']:<5} skyrl/trl {ratio:.2f} <= {EQUAL_MAX_RATIO}: "
                  f"{'PASS' if ok else 'MISS'} ({margin})")
        if r["mode"] == "best" and r["size"] == BEST_SIZE and ratio:
            speedup = 1 / ratio
            ok = speedup >= BEST_MIN_SPEEDUP
            margin = (f"{speedup - BEST_MIN_SPEEDUP:.2f}x to spare" if ok else
                      f"short by {BEST_MIN_SPEEDUP - speedup:.2f}x: skyrl needs "
                      f"{100 * (1 - speedup / BEST_MIN_SPEEDUP):.0f}% less time per step")
            print(f"  best  {r['size']:<5} trl/skyrl {speedup:.2f}x >= {BEST_MIN_SPEEDUP:.0f}x: "
                  f"{'PASS' if ok else 'MISS'} ({margin})")
    for r in rows:
        sm, tm = r["skyrl_memory"].get("total"), r["trl_memory"].get("total")
        if r["size"] == BEST_SIZE and sm and tm:
            ok = sm <= tm
            print(f"  memory {r['mode']:<5} {r['size']}: skyrl {sm:.0f} MB <= trl {tm:.0f} MB: "
                  f"{'PASS' if ok else 'MISS'} ({abs(tm - sm):.0f} MB {'to spare' if ok else 'over'})")
    if not any(r["size"] == BEST_SIZE for r in rows):
        print(f"  (the best-mode and memory targets are at {BEST_SIZE}, which did not run)")


def _rounded(values: list[float | None]) -> list[float | None]:
    return [None if x is None else round(x, 2) for x in values]


def _zip_rounded(*series: list[float | None]) -> list[tuple[float | None, ...]]:
    return [tuple(None if x is None else round(x, 2) for x in row) for row in zip(*series)]
