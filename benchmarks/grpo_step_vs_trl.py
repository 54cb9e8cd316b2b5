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
import statistics
import subprocess
import sys
import tempfile
import threading
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
    """The ``multiply`` dataset with a fresh batch of prompts for every step; returns the train file."""
    from skyrl_env_multiply.dataset import MultiplyDataConfig, MultiplyDatasetBuilder

    files = MultiplyDatasetBuilder().build(
        path, MultiplyDataConfig(train_size=max(64, PROMPTS * (steps + 1)), val_size=8, seed=SEED)
    )
    return Path(files.train)


# -- CPU accounting ---------------------------------------------------------------------------------------------


class CpuMonitor:
    """Every ``interval`` s: CPU seconds used by this process and its descendants, and by everything else.

    ``others`` is the machine's busy time from ``/proc/stat`` (all CPUs, including processes that exited between
    samples) minus this tree's (from ``/proc/PID/stat``). Without ``/proc`` (not Linux) it records nothing and
    every query answers ``None``.
    """

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.root = os.getpid()
        self.samples: list[tuple[float, float, float]] = []  # (monotonic time, ours cpu-s, others cpu-s) per gap
        self.available = Path("/proc/stat").is_file()
        self._last_pid_ticks: dict[int, int] = {}
        self._last_busy: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CpuMonitor:
        if self.available:
            self._sample()
            self._thread = threading.Thread(target=self._loop, name="cpu-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except OSError:
                pass

    @staticmethod
    def _machine_busy() -> int:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        return sum(fields[:8]) - fields[3] - fields[4]

    def _tree_ticks(self) -> dict[int, int]:
        parents, ticks = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid], ticks[pid] = int(rest[1]), int(rest[11]) + int(rest[12])
        ours: dict[int, int] = {}
        for pid in ticks:
            node, seen = pid, 0
            while node > 1 and seen < 64:
                if node == self.root:
                    ours[pid] = ticks[pid]
                    break
                node, seen = parents.get(node, 0), seen + 1
        return ours

    def _sample(self) -> None:
        busy = self._machine_busy()
        tree = self._tree_ticks()
        now = time.monotonic()
        if self._last_busy is not None:
            ours = sum(t - self._last_pid_ticks.get(pid, 0) for pid, t in tree.items())
            others = max(0, (busy - self._last_busy) - ours)
            with self._lock:
                self.samples.append((now, ours / self.tick, others / self.tick))
        self._last_busy, self._last_pid_ticks = busy, tree

    def others_cores(self, start: float, end: float) -> float | None:
        """Average cores used outside this benchmark between two ``time.monotonic()`` times."""
        if not self.available or end <= start:
            return None
        with self._lock:
            samples = list(self.samples)
        total, covered, prev = 0.0, 0.0, None
        for t, _ours, others in samples:
            if prev is not None:
                overlap = min(t, end) - max(prev, start)
                if overlap > 0:
                    total += others * overlap / (t - prev)
                    covered += overlap
            prev = t
        return total / covered if covered > 0 else None

    def wait_idle(self, max_cores: float, timeout: float, window: float = 5.0) -> tuple[float, float | None]:
        """Wait until others used < ``max_cores`` over ``window`` s (at most ``timeout`` s); (waited s, cores)."""
        start = time.monotonic()
        cores = None
        if not self.available:
            return 0.0, None
        while True:
            time.sleep(window)
            now = time.monotonic()
            cores = self.others_cores(now - window, now)
            if cores is not None and cores < max_cores or now - start >= timeout:
                return now - start, cores


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


def versions() -> dict[str, str]:
    """Versions of what is compared, and the skyrl checkout's commit (``+dirty`` with uncommitted changes)."""
    import importlib.metadata as md

    found = {}
    for dist in ("skyrl-core", "trl", "transformers", "torch", "ray"):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            found[dist] = "-"
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        found["skyrl commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        found["skyrl commit"] = "-"
    return found


def _child_env() -> dict[str, str]:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)
    return env


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the process group that ``proc`` leads."""
    import signal

    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_skyrl(model: Path, train_file: Path, workdir: Path, steps: int, timeout: float,
              tag: str = "") -> dict[str, Any]:
    """One ``skyrl run``; per step its timings and the (monotonic) time its metrics line appeared."""
    out = workdir / f"skyrl_run{tag}"
    shutil.rmtree(out, ignore_errors=True)
    metrics_file = out / "metrics.jsonl"
    cmd = [sys.executable, "-m", "skyrl_core.cli.main", "run", "--env", "multiply", "--algo", "grpo",
           *skyrl_overrides(model, train_file, out, steps)]
    log_file = workdir / f"skyrl{tag}.log"
    seen: list[float] = []  # when each metrics line showed up: the step ended just before
    start = time.monotonic()
    with open(log_file, "w") as log:
        # Its own process group, so that a timeout or Ctrl-C also stops the Ray processes the run started.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True)
        try:
            while proc.poll() is None:
                if time.monotonic() - start > timeout:
                    raise RuntimeError(f"skyrl run timed out after {timeout:.0f}s; see {log_file}")
                if metrics_file.is_file():
                    lines = sum(1 for line in metrics_file.read_text().splitlines() if line.strip())
                    seen.extend([time.monotonic()] * (lines - len(seen)))
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                _stop_group(proc)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"skyrl run failed (exit {proc.returncode}); see {log_file}:\n{_tail(log_file)}")
    lines = [line for line in metrics_file.read_text().splitlines() if line.strip()]
    seen.extend([time.monotonic()] * (len(lines) - len(seen)))
    records = [(json.loads(line), t) for line, t in zip(lines, seen)]
    records = [(r, t) for r, t in records if r.get("timing/step") is not None]
    if not records:
        raise RuntimeError(f"skyrl wrote no timing/step in {metrics_file}")

    def series(key: str) -> list[float | None]:
        return [None if r.get(key) is None else float(r[key]) for r, _ in records]

    return {
        "steps": series("timing/step"),
        "windows": [(t - float(r["timing/step"]), t) for r, t in records],
        "generate": series("timing/generate"),
        "train": series("timing/train"),
        "weight_sync": series("timing/weight_sync"),
        "completion_length": _mean([x for x in series("response_length/mean") if x is not None]),
        "wall_s": wall,
        "log": str(log_file),
    }


# -- TRL --------------------------------------------------------------------------------------------------------


def run_trl(model: Path, train_file: Path, workdir: Path, steps: int, threads: int, timeout: float,
            tag: str = "") -> dict[str, Any]:
    spec = {"model": str(model), "train_file": str(train_file), "output_dir": str(workdir / f"trl_run{tag}"),
            "steps": steps, "threads": threads, "result": str(workdir / f"trl_result{tag}.json")}
    spec_file = workdir / f"trl_spec{tag}.json"
    spec_file.write_text(json.dumps(spec))
    log_file = workdir / f"trl{tag}.log"
    start = time.monotonic()
    with open(log_file, "w") as log:
        try:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--trl-worker", str(spec_file)],
                                  stdout=log, stderr=subprocess.STDOUT, env=_child_env(), timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"TRL run timed out after {timeout:.0f}s; see {log_file}") from None
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"TRL run failed (exit {proc.returncode}); see {log_file}:\n{_tail(log_file)}")
    result = json.loads(Path(spec["result"]).read_text())
    result.update(wall_s=wall, log=str(log_file))
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
            self.windows: list[tuple[float, float]] = []
            self.logs: list[dict[str, Any]] = []
            self.threads: set[int] = set()
            self._start = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - TrainerCallback API
            self.threads.add(torch.get_num_threads())
            self._start = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.windows.append((self._start, time.monotonic()))

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
    Path(spec["result"]).write_text(json.dumps({
        "steps": [end - start for start, end in timer.windows],
        "windows": timer.windows,
        "rollout": phases.get("_generate_and_score_completions", []),
        "generate": phases.get("_generate_single_turn", []),
        "completion_length": _mean(lengths),
        "threads": sorted(timer.threads),
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


# -- statistics and report --------------------------------------------------------------------------------------


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


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
        return _median([steps[key][i] for i in rows])

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
        "skyrl_completion_length": _mean([r["completion_length"] for r in sky_runs if r["completion_length"]]),
        "trl_completion_length": _mean([r["completion_length"] for r in trl_runs if r["completion_length"]]),
        "skyrl_wall_s": _median([r["wall_s"] for r in sky_runs]),
        "trl_wall_s": _median([r["wall_s"] for r in trl_runs]),
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
