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
    dominate the numbers):

    - skyrl: ``python -m skyrl_core.cli.main run --env multiply --algo grpo ...`` in a subprocess (a fresh local
      Ray cluster: driver, one ``ddp`` policy worker, one ``hf`` inference engine, ``gloo``/object-store weight
      sync). Per-step times are read from the run's ``metrics.jsonl`` (``timing/step``, and its parts
      ``timing/generate``, ``timing/train``, ``timing/weight_sync``).
    - TRL: this script re-runs itself with ``--trl-worker SPEC.json`` in a subprocess: ``torch.set_num_threads``
      equal to skyrl's per-actor share (``os.cpu_count()`` for one policy worker and one engine), ``GRPOTrainer`` on
      the same parquet prompts (conversational, so TRL applies the same chat template), ``per_device_train_batch_size
      = 32`` completions, ``num_generations = 4``, ``steps_per_generation = 1``, ``beta = 0``, ``use_cpu``,
      ``optim = adamw_torch`` (skyrl's ``torch.optim.AdamW``), constant LR. A ``TrainerCallback`` times each
      step from ``on_step_begin`` to ``on_step_end``; the trainer's ``_generate_and_score_completions`` and
      ``_generate_single_turn`` are wrapped to time the rollout part.

    Each framework's figure is the median over the steps after the first (the first one warms up caches and
    allocators); the ratio is ``skyrl / trl`` (below 1: skyrl is faster). Start-up (Ray, model loading) is not in
    the per-step figure but the total wall time of each subprocess is printed too.

Caveats
    - Not the same algorithm cost: with one mini-batch and one epoch per batch, TRL uses the policy's own detached
      log-probs as the "old" ones (no extra pass); skyrl always runs a separate no-grad forward for the old
      log-probs (it also reports rollout-vs-trainer log-prob drift from it). That pass is part of skyrl's
      ``timing/train``.
    - Generation: skyrl's ``hf`` engine drops finished rows from the batch; TRL's ``model.generate`` keeps
      decoding finished rows (padding) until every row is done. Random tiny models rarely sample EOS, so almost
      every completion has 32 tokens; the mean completion length of both sides is printed for that reason.
    - Sampling is random (temperature 1, different RNG streams), so the two sides do not see identical
      completions, only identically distributed ones.
    - Wall-clock timing on a shared machine: load from other processes changes the result. The 1-minute load
      average before and after each run is printed; compare numbers only from runs under similar load. The
      benchmark itself keeps about 2 cores busy.
    - ``RAY_ADDRESS`` is removed from skyrl's environment so it always starts its own local cluster.

Usage::

    .venv/bin/python benchmarks/grpo_step_vs_trl.py                 # both sizes, 6 steps each (about 25 min on 2 cores)
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --quick         # 10m only, 3 steps: a smoke test
    .venv/bin/python benchmarks/grpo_step_vs_trl.py --sizes 25m --steps 8 --json out.json --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The batch of one step: prompts, samples per prompt, new tokens per sample.
PROMPTS, SAMPLES, NEW_TOKENS = 8, 4, 32
ROWS = PROMPTS * SAMPLES
LR, WEIGHT_DECAY, MAX_GRAD_NORM, SEED = 1e-6, 0.01, 1.0, 42

#: Model sizes: ``None`` is ``make_tiny_model(size="small")`` as is; a dict replaces its transformer's shape.
SIZES: dict[str, dict[str, int] | None] = {
    "10m": None,
    "25m": dict(hidden_size=384, num_hidden_layers=11, num_attention_heads=6, num_key_value_heads=2,
                intermediate_size=1536),
}


# -- set-up -----------------------------------------------------------------------------------------------------


def build_model(path: Path, shape: dict[str, int] | None, seed: int = 0) -> Path:
    """The ``small`` tiny model (tokenizer + random Qwen2) in ``path``; with ``shape``, a bigger transformer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from skyrl_core.testing.tiny_model import make_tiny_model

    make_tiny_model(path, arch="qwen2", seed=seed, size="small")
    if shape:
        base = AutoConfig.from_pretrained(path)
        fields = base.to_dict()
        for derived in ("layer_types", "head_dim", "architectures", "transformers_version"):
            fields.pop(derived, None)  # recomputed by the config class from the new shape
        config = type(base)(**{**fields, **shape})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.generation_config = GenerationConfig.from_pretrained(path)
        model.save_pretrained(path)
    return path


def count_params(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                n = 1
                for dim in f.get_slice(name).get_shape():
                    n *= dim
                total += n
    return total


def build_data(path: Path, steps: int) -> Path:
    """The ``multiply`` dataset with at least one fresh batch of prompts per step; returns the train file."""
    from skyrl_env_multiply.dataset import MultiplyDataConfig, MultiplyDatasetBuilder

    files = MultiplyDatasetBuilder().build(
        path, MultiplyDataConfig(train_size=max(64, PROMPTS * (steps + 1)), val_size=8, seed=SEED)
    )
    return Path(files.train)


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def median_after_warmup(values: list[float]) -> float | None:
    kept = values[1:] if len(values) > 1 else values
    return statistics.median(kept) if kept else None


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


# -- skyrl ------------------------------------------------------------------------------------------------------


def skyrl_overrides(model: Path, train_file: Path, out: Path, steps: int) -> list[str]:
    return [
        f"trainer.policy.model.path={model}",
        f"data.train_data=['{train_file}']",
        "data.val_data=[]",
        f"trainer.output_dir={out}",
        f"trainer.max_training_steps={steps}",
        f"trainer.train_batch_size={PROMPTS}",
        f"trainer.policy_mini_batch_size={PROMPTS}",
        f"generator.n_samples_per_prompt={SAMPLES}",
        f"generator.sampling_params.max_generate_length={NEW_TOKENS}",
        "generator.sampling_params.temperature=1.0",
        "generator.sampling_params.top_p=1.0",
        "generator.sampling_params.top_k=-1",
        f"trainer.micro_train_batch_size_per_gpu={ROWS}",
        f"trainer.micro_forward_batch_size_per_gpu={ROWS}",
        "trainer.bf16=false",
        "trainer.gradient_checkpointing=false",
        "trainer.algorithm.use_kl_loss=false",
        "trainer.algorithm.use_entropy_loss=false",
        f"trainer.policy.optimizer_config.lr={LR}",
        f"trainer.policy.optimizer_config.weight_decay={WEIGHT_DECAY}",
        f"trainer.policy.optimizer_config.max_grad_norm={MAX_GRAD_NORM}",
        "trainer.policy.optimizer_config.num_warmup_steps=0",
        "trainer.eval_interval=0",
        "trainer.eval_before_train=false",
        f"trainer.seed={SEED}",
        "trainer.logger=console",
    ]


def run_skyrl(model: Path, train_file: Path, workdir: Path, steps: int, timeout: float) -> dict[str, Any]:
    out = workdir / "skyrl_run"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "skyrl_core.cli.main", "run", "--env", "multiply", "--algo", "grpo",
           *skyrl_overrides(model, train_file, out, steps)]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)
    log_file = workdir / "skyrl.log"
    result: dict[str, Any] = {"load_before": loadavg(), "log": str(log_file)}
    start = time.perf_counter()
    with open(log_file, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False)
    result["wall_s"] = time.perf_counter() - start
    result["load_after"] = loadavg()
    if proc.returncode != 0:
        raise RuntimeError(f"skyrl run failed (exit {proc.returncode}); see {log_file}:\n{_tail(log_file)}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    records = [r for r in records if "timing/step" in r]
    if not records:
        raise RuntimeError(f"skyrl wrote no timing/step in {out / 'metrics.jsonl'}")

    def series(key: str) -> list[float]:
        return [float(r[key]) for r in records if r.get(key) is not None]

    result.update(
        steps=series("timing/step"),
        generate=series("timing/generate"),
        train=series("timing/train"),
        weight_sync=series("timing/weight_sync"),
        completion_length=mean(series("response_length/mean")),
        reward=mean(series("reward/mean")),
    )
    return result


# -- TRL --------------------------------------------------------------------------------------------------------


def run_trl(model: Path, train_file: Path, workdir: Path, steps: int, threads: int, timeout: float) -> dict[str, Any]:
    spec = {"model": str(model), "train_file": str(train_file), "output_dir": str(workdir / "trl_run"),
            "steps": steps, "threads": threads, "result": str(workdir / "trl_result.json")}
    spec_file = workdir / "trl_spec.json"
    spec_file.write_text(json.dumps(spec))
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    log_file = workdir / "trl.log"
    load_before = loadavg()
    start = time.perf_counter()
    with open(log_file, "w") as log:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--trl-worker", str(spec_file)],
                              stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"TRL run failed (exit {proc.returncode}); see {log_file}:\n{_tail(log_file)}")
    result = json.loads(Path(spec["result"]).read_text())
    result.update(wall_s=wall, load_before=load_before, load_after=loadavg(), log=str(log_file))
    return result


def trl_worker(spec_file: str) -> None:
    """Run TRL's GRPOTrainer as described by ``spec_file`` and write the per-step timings (the child process)."""
    import dataclasses

    spec = json.loads(Path(spec_file).read_text())
    import torch

    torch.set_num_threads(spec["threads"])
    import pyarrow.parquet as pq
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from skyrl_env_multiply.env import MultiplyEnv

    rows = pq.read_table(spec["train_file"]).to_pylist()
    dataset = Dataset.from_list(
        [{"prompt": row["prompt"], "ground_truth": row["reward_spec"]["ground_truth"]} for row in rows]
    )

    def multiply_reward(completions: list[Any], ground_truth: list[str], **_: Any) -> list[float]:
        """skyrl's own ``multiply`` env grades each completion, so both sides use the same reward."""
        rewards = []
        for completion, truth in zip(completions, ground_truth):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            rewards.append(float(MultiplyEnv(extras={"reward_spec": {"ground_truth": truth}}).step(text).reward))
        return rewards

    wanted = dict(
        output_dir=spec["output_dir"], max_steps=spec["steps"], per_device_train_batch_size=ROWS,
        gradient_accumulation_steps=1, steps_per_generation=1, num_generations=SAMPLES,
        max_completion_length=NEW_TOKENS, temperature=1.0, top_p=1.0, top_k=0, beta=0.0, num_iterations=1,
        learning_rate=LR, weight_decay=WEIGHT_DECAY, adam_beta1=0.9, adam_beta2=0.999, max_grad_norm=MAX_GRAD_NORM,
        optim="adamw_torch", lr_scheduler_type="constant", warmup_steps=0, bf16=False, fp16=False, use_cpu=True,
        gradient_checkpointing=False, torch_compile=False, report_to="none", logging_steps=1, save_strategy="no",
        seed=SEED, disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False, log_completions=False,
    )
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    dropped = sorted(set(wanted) - fields)
    if dropped:
        print(f"GRPOConfig of trl {trl.__version__} has no {dropped}; left at their defaults", flush=True)
    args = GRPOConfig(**{k: v for k, v in wanted.items() if k in fields})

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[float] = []
            self.logs: list[dict[str, Any]] = []
            self.threads: list[int] = []
            self._start = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - TrainerCallback API
            self.threads.append(torch.get_num_threads())
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.steps.append(time.perf_counter() - self._start)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            self.logs.append(dict(logs or {}))

    timer = StepTimer()
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    trainer = GRPOTrainer(model=model, reward_funcs=multiply_reward, args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[timer])
    torch.set_num_threads(spec["threads"])  # in case accelerate changed it

    phases: dict[str, list[float]] = {}
    for name in ("_generate_and_score_completions", "_generate_single_turn"):
        if hasattr(trainer, name):
            setattr(trainer, name, _timed(getattr(trainer, name), phases.setdefault(name, [])))

    trainer.train()
    lengths = [log["completions/mean_length"] for log in timer.logs if "completions/mean_length" in log]
    rewards = [log["reward"] for log in timer.logs if "reward" in log]
    Path(spec["result"]).write_text(json.dumps({
        "steps": timer.steps,
        "rollout": phases.get("_generate_and_score_completions", []),
        "generate": phases.get("_generate_single_turn", []),
        "completion_length": mean(lengths),
        "reward": mean(rewards),
        "threads": sorted(set(timer.threads)),
        "trl_version": trl.__version__,
    }))


def _timed(method: Any, durations: list[float]) -> Any:
    """``method`` wrapped to append the seconds of each call to ``durations``."""
    import functools

    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    return timed


# -- report -----------------------------------------------------------------------------------------------------


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def summarize(size: str, params: int, sky: dict[str, Any], trl_res: dict[str, Any]) -> dict[str, Any]:
    s_step, t_step = median_after_warmup(sky["steps"]), median_after_warmup(trl_res["steps"])
    t_rollout = median_after_warmup(trl_res.get("rollout", []))
    return {
        "size": size, "params": params,
        "skyrl_s_per_step": s_step, "trl_s_per_step": t_step,
        "ratio": s_step / t_step if s_step and t_step else None,
        "skyrl_generate": median_after_warmup(sky["generate"]), "skyrl_train": median_after_warmup(sky["train"]),
        "skyrl_weight_sync": median_after_warmup(sky["weight_sync"]),
        "trl_rollout": t_rollout, "trl_generate": median_after_warmup(trl_res.get("generate", [])),
        "trl_train": (t_step - t_rollout) if t_step is not None and t_rollout is not None else None,
        "skyrl_completion_length": sky["completion_length"], "trl_completion_length": trl_res["completion_length"],
        "skyrl_wall_s": sky["wall_s"], "trl_wall_s": trl_res["wall_s"],
        "skyrl_load": (sky["load_before"], sky["load_after"]), "trl_load": (trl_res["load_before"],
                                                                           trl_res["load_after"]),
        "skyrl_raw": sky, "trl_raw": trl_res,
    }


def print_report(rows: list[dict[str, Any]], steps: int, threads: int) -> None:
    print()
    print(f"GRPO step, {PROMPTS} prompts x {SAMPLES} samples x {NEW_TOKENS} new tokens, fp32, CPU, "
          f"{os.cpu_count()} cores, torch threads {threads}; median of steps 2..{steps}")
    head = f"{'size':<5} {'params':>7} {'skyrl s/step':>12} {'trl s/step':>10} {'skyrl/trl':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['size']:<5} {r['params'] / 1e6:>6.1f}M {_fmt(r['skyrl_s_per_step']):>12} "
              f"{_fmt(r['trl_s_per_step']):>10} {_fmt(r['ratio'], '.2f'):>9}")
    print()
    print("where the time goes (medians, s):")
    head = (f"{'size':<5} {'sky gen':>8} {'sky train':>9} {'sky sync':>8} {'trl rollout':>11} {'trl gen':>8} "
            f"{'trl train':>9} {'len sky/trl':>11} {'wall sky/trl':>12} {'load sky':>11} {'load trl':>11}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['size']:<5} {_fmt(r['skyrl_generate']):>8} {_fmt(r['skyrl_train']):>9} "
              f"{_fmt(r['skyrl_weight_sync']):>8} {_fmt(r['trl_rollout']):>11} {_fmt(r['trl_generate']):>8} "
              f"{_fmt(r['trl_train']):>9} "
              f"{_fmt(r['skyrl_completion_length'], '.1f') + '/' + _fmt(r['trl_completion_length'], '.1f'):>11} "
              f"{_fmt(r['skyrl_wall_s'], '.0f') + '/' + _fmt(r['trl_wall_s'], '.0f'):>12} "
              f"{_fmt(r['skyrl_load'][0], '.1f') + '->' + _fmt(r['skyrl_load'][1], '.1f'):>11} "
              f"{_fmt(r['trl_load'][0], '.1f') + '->' + _fmt(r['trl_load'][1], '.1f'):>11}")
    print()
    print("sky gen/train/sync = skyrl timing/generate, timing/train (old log-probs + update), timing/weight_sync; "
          "trl rollout = generate + reward + advantages, trl train = step - rollout; len = mean completion tokens; "
          "wall = whole subprocess incl. start-up; load = 1-min load average before->after.")
    for r in rows:
        print(f"{r['size']} per-step s: skyrl {[round(x, 2) for x in r['skyrl_raw']['steps']]}, "
              f"trl {[round(x, 2) for x in r['trl_raw']['steps']]}")


# -- main -------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10m,25m", help=f"comma-separated model sizes from {sorted(SIZES)}")
    parser.add_argument("--steps", type=int, default=6, help="training steps per framework; the first is warm-up")
    parser.add_argument("--quick", action="store_true", help="smoke test: only 10m, 3 steps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the TRL process (default: os.cpu_count(), as skyrl gives its actors)")
    parser.add_argument("--workdir", default=None, help="keep models, data, logs and runs here (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this file")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per framework run")
    parser.add_argument("--trl-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.steps = "10m", 3
    args.sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {sorted(SIZES)}")
    if args.steps < 2 and not args.trl_worker:
        parser.error("--steps must be at least 2 (the first step is a warm-up)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trl_worker:
        trl_worker(args.trl_worker)
        return 0
    threads = args.threads or os.cpu_count() or 1
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="grpo_vs_trl_"))
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        train_file = build_data(root / "data", args.steps)
        for size in args.sizes:
            workdir = root / size
            workdir.mkdir(parents=True, exist_ok=True)
            model = build_model(workdir / "model", SIZES[size])
            params = count_params(model)
            print(f"[{size}] {params / 1e6:.1f}M params in {model}; skyrl, {args.steps} steps ...", flush=True)
            sky = run_skyrl(model, train_file, workdir, args.steps, args.timeout)
            print(f"[{size}] skyrl s/step {[round(x, 2) for x in sky['steps']]}; TRL, {args.steps} steps ...",
                  flush=True)
            trl_res = run_trl(model, train_file, workdir, args.steps, threads, args.timeout)
            print(f"[{size}] trl   s/step {[round(x, 2) for x in trl_res['steps']]}", flush=True)
            rows.append(summarize(size, params, sky, trl_res))
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    print_report(rows, args.steps, threads)
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "threads": threads, "cpus": os.cpu_count(),
                                               "results": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
