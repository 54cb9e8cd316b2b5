"""Seconds of one training forward + backward, one row per sequence against the shared-prompt forward.

The batch is a GRPO step's: 8 prompts x 4 samples, prompts of 78 tokens (the benchmark's chat-templated
``multiply`` prompts are about that long) and 32 response tokens, all in one micro-batch, at the model sizes of
``grpo_step_vs_trl.py``. Both layouts run in this process, alternating, so the machine's drift hits both alike;
the report is the median over the repetitions and the ratio shared / plain (below 1: the shared forward is
faster). Unless ``--no-bf16``, both are also timed under bf16 autocast with the fp32 output head, as
``trainer.bf16=true`` trains.

    .venv/bin/python benchmarks/train_layouts.py                       # 135m, fp32 and bf16, 5 repetitions
    .venv/bin/python benchmarks/train_layouts.py --sizes 10m,25m,135m --reps 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_common import NEW_TOKENS, PROMPTS, SAMPLES, SIZES, build_model  # noqa: E402

PROMPT_TOKENS = 78


def _batch(vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(3, vocab, (PROMPTS, PROMPT_TOKENS), generator=gen).repeat_interleave(SAMPLES, 0)
    responses = torch.randint(3, vocab, (PROMPTS * SAMPLES, NEW_TOKENS), generator=gen)
    sequences = torch.cat([prompts, responses], dim=1)
    return sequences, torch.ones_like(sequences)


def _step(model, sequences, attention, shared, bf16: bool) -> float:
    from skyrl_core.mixed_precision import bf16_autocast
    from skyrl_core.workers.logprobs import response_logprobs

    model.zero_grad(set_to_none=True)
    start = time.perf_counter()

    def forward(**inputs):
        with bf16_autocast(sequences.device, bf16):
            return model(**inputs)

    logprobs, _ = response_logprobs(forward, sequences, attention, NEW_TOKENS, shared_prompts=shared)
    logprobs.sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="135m")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-bf16", action="store_true", help="fp32 only")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    from transformers import AutoModelForCausalLM

    from skyrl_core.mixed_precision import run_output_head_in_float32
    from skyrl_core.workers.shared_prompt import ModelShape

    print(f"{PROMPTS} prompts x {SAMPLES} samples, prompt {PROMPT_TOKENS} + response {NEW_TOKENS} tokens, one "
          f"micro-batch, torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.reps}")
    print(f"{'size':<6}{'precision':<11}{'plain s':>9}{'shared s':>10}{'shared/plain':>14}")
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory() as folder:
            path = build_model(Path(folder), SIZES[size])
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        model.train()
        run_output_head_in_float32(model)  # as the ddp strategy under trainer.bf16 (a no-op in fp32)
        shape = ModelShape.of(model.config)
        sequences, attention = _batch(model.config.vocab_size)
        for bf16 in (False,) if args.no_bf16 else (False, True):
            _step(model, sequences, attention, None, bf16)  # warm-up of both layouts
            _step(model, sequences, attention, shape, bf16)
            times: dict[bool, list[float]] = {False: [], True: []}
            for rep in range(args.reps):
                for shared in (rep % 2 == 0, rep % 2 == 1):  # alternate which layout goes first
                    times[shared].append(_step(model, sequences, attention, shape if shared else None, bf16))
            plain, packed = statistics.median(times[False]), statistics.median(times[True])
            print(f"{size:<6}{'bf16' if bf16 else 'fp32':<11}{plain:>9.2f}{packed:>10.2f}{packed / plain:>14.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
