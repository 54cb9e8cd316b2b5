#!/usr/bin/env bash
# `make smoke`: the pipeline in under a minute or two: a short real GRPO job on the multiply env with a tiny random
# model, CPU only. A random model scores 0 on multiply; `make demo` shows learning.
set -euo pipefail
out="${1:-smoke_out}"
skyrl=".venv/bin/skyrl"
rm -rf "$out"
mkdir -p "$out"
"$skyrl" plugins
"$skyrl" model tiny --output-dir "$out/model" --arch qwen2 --seed 0
"$skyrl" run --env multiply --algo grpo \
  trainer.policy.model.path="$out/model" \
  trainer.output_dir="$out/run" \
  data.multiply.num_digits=1 data.multiply.train_size=256 data.multiply.val_size=16 \
  trainer.max_training_steps=10 trainer.train_batch_size=8 trainer.policy_mini_batch_size=8 \
  generator.n_samples_per_prompt=4 generator.sampling_params.max_generate_length=32 \
  generator.eval_sampling_params.max_generate_length=32 \
  trainer.bf16=false trainer.eval_interval=5 trainer.eval_batch_size=16 \
  trainer.policy.optimizer_config.lr=1e-4 trainer.logger=console
echo
echo "smoke run finished (a random tiny model scores 0 on multiply: this shows the pipeline, not learning;"
echo "make demo shows learning). Files:"
echo "  config:   $out/run/config.yaml"
echo "  metrics:  $out/run/metrics.jsonl ($(wc -l < "$out/run/metrics.jsonl") lines)"
echo "  samples:  $out/run/samples/"
echo "  plot:     $out/run/plots/metrics.png"
