"""Throughput of the ``hf`` engine: N concurrent per-request calls vs the same N prompts sent as one batch.

Three ways to generate the same N prompts (greedy, a fixed number of new tokens each, no early stop), on the
``small`` tiny model (about 10M parameters), alternating in each round so that machine load hits all alike:

- ``batch``: all N requests handed over at once (``asyncio.gather``): they are admitted together, as one batch;
- ``concurrent``: N independent callers, each arriving a little after the previous one (``--stagger-ms``), so
  requests join the running batch between decode steps (continuous batching);
- ``sequential``: one request at a time (no batching; a lower bound).

Prints tokens/s per mode and round, then the medians and the ratios concurrent/batch and batch/sequential.

    python benchmarks/engine_concurrency.py --requests 32 --new-tokens 64 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import torch

from skyrl_core.inference.base import GenerationRequest, SamplingParams
from skyrl_core.inference.hf import HFEngine
from skyrl_core.testing.tiny_model import make_tiny_model


def requests_of(n: int, prompt_len: int, new_tokens: int, vocab: int) -> list[GenerationRequest]:
    g = torch.Generator().manual_seed(0)
    # No EOS can stop a row: every row generates exactly ``new_tokens``.
    sampling = SamplingParams(temperature=0.0, max_tokens=new_tokens)
    return [GenerationRequest(prompt_token_ids=torch.randint(3, vocab, (prompt_len + i % 7,), generator=g).tolist(),
                              sampling=sampling) for i in range(n)]


async def batch(engine: HFEngine, requests: list[GenerationRequest], stagger_s: float) -> int:
    results = await asyncio.gather(*(engine.generate(r) for r in requests))
    return sum(len(r.token_ids) for r in results)


async def concurrent(engine: HFEngine, requests: list[GenerationRequest], stagger_s: float) -> int:
    async def caller(request: GenerationRequest, delay: float) -> int:
        await asyncio.sleep(delay)
        return len((await engine.generate(request)).token_ids)

    return sum(await asyncio.gather(*(caller(r, i * stagger_s) for i, r in enumerate(requests))))


async def sequential(engine: HFEngine, requests: list[GenerationRequest], stagger_s: float) -> int:
    return sum([len((await engine.generate(r)).token_ids) for r in requests])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=48)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stagger-ms", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        path = make_tiny_model(folder, arch="qwen2", seed=0, size="small")
        engine = HFEngine(model_path=str(path), device="cpu", config=None)
        engine.eos_ids = frozenset()  # fixed-length rows: the comparison is about batching, not stopping
        params = sum(p.numel() for p in engine.model.parameters())
        print(f"model: {params / 1e6:.1f}M parameters; {args.requests} requests x {args.new_tokens} new tokens, "
              f"prompts of ~{args.prompt_len} tokens; {args.threads} thread(s)")
        requests = requests_of(args.requests, args.prompt_len, args.new_tokens, len(engine.tokenizer))
        modes = {"batch": batch, "concurrent": concurrent, "sequential": sequential}
        rates: dict[str, list[float]] = {name: [] for name in modes}
        asyncio.run(batch(engine, requests[:4], 0.0))  # warm-up
        for round_index in range(args.rounds):
            for name, mode in modes.items():
                asyncio.run(engine.reset_prefix_cache())  # every mode prefills every prompt itself
                start = time.perf_counter()
                tokens = asyncio.run(mode(engine, requests, args.stagger_ms / 1000))
                rates[name].append(tokens / (time.perf_counter() - start))
            latest = ", ".join(f"{n} {r[-1]:.0f} tok/s" for n, r in rates.items())
            print(f"round {round_index + 1}: {latest}", flush=True)
        median = {name: statistics.median(r) for name, r in rates.items()}
        print("median: " + ", ".join(f"{n} {v:.0f} tok/s" for n, v in median.items()))
        print(f"concurrent / batch = {median['concurrent'] / median['batch']:.2f}; "
              f"batch / sequential = {median['batch'] / median['sequential']:.2f}")


if __name__ == "__main__":
    main()
