"""GPU readiness of skyrl's components without Ray: ``python benchmarks/gpu_components.py [CHECK ...]``.

Each check runs the repository's own code on CUDA in plain processes (``torch.multiprocessing``, one per GPU, at most
two) and prints ``PASS``, ``FAIL`` or ``SKIP`` with its time; a summary follows and the exit status is 1 if any
check failed. Without a CUDA device every check says ``SKIP`` (a CPU test keeps it so). The checks:

- ``fsdp2``: :class:`skyrl_fsdp.strategy.FSDP2Strategy` over NCCL (2 ranks with 2 GPUs, else 1), bf16 mixed
  precision, activation checkpointing: 5 AdamW steps on one fixed batch, the loss must fall and the gradient norms
  be finite; then ``iter_weights`` must stream every parameter.
- ``deepspeed``: the same with :class:`skyrl_deepspeed.strategy.DeepSpeedStrategy`, ZeRO 3 (SKIP without the
  ``deepspeed`` package).
- ``weight_transfer``: a weight-sync sender and a receiver in two plain processes; every tensor must arrive
  bit-identical. With 2 GPUs: ``nccl`` (skyrl-core's broadcast), GPU 0 to GPU 1. With one GPU NCCL refuses two
  ranks on one device, so the same-device transport colocated runs use is tested instead: ``cuda_ipc``
  (skyrl-vllm).
- ``hf_generate``: the built-in ``hf`` engine on CUDA: concurrent greedy requests, and the first one's tokens equal
  to ``transformers``' own greedy ``generate``.

Needs torch (with CUDA), transformers and tokenizers, plus the pure-Python attrs and pluggy; not Ray. The packages
of this repository are used from their ``src`` folders when they are not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _src in [REPO / "skyrl_core" / "src", *sorted(REPO.glob("plugins/*/src"))]:
    if str(_src) not in sys.path:
        sys.path.append(str(_src))  # installed copies come first

#: Seconds a check's processes may take before the check fails.
PROCESS_TIMEOUT_S = 240
STEPS = 5


class Skip(Exception):
    """A check that cannot run here (no CUDA device, an optional package missing)."""


def cuda_devices() -> int:
    """CUDA devices this process sees; 0 raises :class:`Skip`."""
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        raise Skip("no CUDA device")
    return torch.cuda.device_count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_model(folder: Path) -> str:
    from skyrl_core.testing.tiny_model import make_tiny_model

    return str(make_tiny_model(folder / "model", arch="qwen2", seed=0))


def spawn(target: Callable[..., None], args_per_rank: list[tuple], env: dict[str, str]) -> None:
    """Run ``target(*args)`` in one fresh process per entry, with ``env`` added to their environment; any failure
    or a timeout raises."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    processes = [context.Process(target=target, args=args) for args in args_per_rank]
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # a spawned process starts with a copy of this environment
    try:
        for process in processes:
            process.start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    for process in processes:
        process.join(max(1.0, deadline - time.monotonic()))
    stuck = [i for i, p in enumerate(processes) if p.is_alive()]
    for process in processes:
        if process.is_alive():
            process.kill()
    if stuck:
        raise RuntimeError(f"process(es) {stuck} still running after {PROCESS_TIMEOUT_S} s")
    failed = {i: p.exitcode for i, p in enumerate(processes) if p.exitcode != 0}
    if failed:
        raise RuntimeError(f"process exit codes {failed} (their traceback is above)")


# -- training strategies -------------------------------------------------------------------------------------------


def make_strategy(name: str, bf16: bool):
    from skyrl_core.config.schema import SkyRLConfig

    run_config = SkyRLConfig()
    run_config.trainer.strategy, run_config.trainer.bf16 = name, bf16
    if name == "fsdp2":
        from skyrl_fsdp.config import FSDPConfig
        from skyrl_fsdp.strategy import FSDP2Strategy

        return FSDP2Strategy(config=FSDPConfig(), run_config=run_config)
    from skyrl_deepspeed.config import DeepSpeedConfig
    from skyrl_deepspeed.strategy import DeepSpeedStrategy

    return DeepSpeedStrategy(config=DeepSpeedConfig(deepspeed_config={"zero_optimization": {"stage": 3}}),
                             run_config=run_config)


def strategy_rank(rank: int, world: int, port: int, name: str, bf16: bool, model_path: str, out: str) -> None:
    """One rank: STEPS steps on this rank's rows of a fixed batch, then stream the weights; rank 0 writes JSON."""
    import torch
    import torch.nn.functional as F

    from skyrl_core.config.schema import OptimizerConfig

    if torch.cuda.is_available():
        torch.cuda.set_device(rank)
    strategy = make_strategy(name, bf16)
    strategy.init_distributed(rank=rank, world_size=world, master_addr="127.0.0.1", master_port=port)
    strategy.build_model(model_path, trainable=True, optimizer_config=OptimizerConfig(lr=1e-3, max_grad_norm=1.0))
    vocab = strategy.unwrapped_model.config.vocab_size
    ids = torch.randint(3, vocab, (2 * world, 16), generator=torch.Generator().manual_seed(0))
    mine = ids[rank * 2:(rank + 1) * 2].to(strategy.device)
    losses, norms = [], []
    strategy.set_train(True)
    for _ in range(STEPS):
        with strategy.accumulate(last=True):
            logits = strategy.forward(input_ids=mine, attention_mask=torch.ones_like(mine)).logits
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), mine[:, 1:].reshape(-1))
            strategy.backward(loss / world)  # this rank's share of the mean over ranks
        losses.append(float(strategy.all_reduce_sum(loss.detach() / world)))
        norms.append(strategy.optimizer_step(1.0).grad_norm)
    names = [n for chunk in strategy.iter_weights(dtype=torch.bfloat16, bucket_bytes=1 << 20) for n in chunk.names]
    if rank == 0:
        Path(out).write_text(json.dumps({"losses": losses, "norms": norms, "weights": len(set(names)),
                                         "parameters": len(dict(strategy.unwrapped_model.named_parameters())),
                                         "device": strategy.device.type}))


def check_strategy(name: str) -> str:
    gpus = cuda_devices()
    if name == "deepspeed":
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise Skip("deepspeed is not installed (pip install -e plugins/skyrl_deepspeed)")
    return run_strategy(name, min(2, gpus), bf16=True, device="cuda")


def run_strategy(name: str, world: int, *, bf16: bool, device: str) -> str:
    """:func:`strategy_rank` on ``world`` processes, on ``device`` (``cuda``: rank r on GPU r; ``cpu``: CUDA hidden
    from them); raises on a problem."""
    with tempfile.TemporaryDirectory() as folder:
        model, out, port = tiny_model(Path(folder)), os.path.join(folder, "rank0.json"), free_port()
        spawn(strategy_rank, [(rank, world, port, name, bf16, model, out) for rank in range(world)],
              env={} if device == "cuda" else {"CUDA_VISIBLE_DEVICES": ""})
        result = json.loads(Path(out).read_text())
    losses, norms = result["losses"], result["norms"]
    problems = []
    if result["device"] != device:
        problems.append(f"trained on {result['device']}")
    if not all(map(_finite, losses + norms)) or not losses[-1] < losses[0]:
        problems.append(f"losses {losses}, gradient norms {norms}: not finite or not falling")
    if result["weights"] != result["parameters"]:
        problems.append(f"iter_weights streamed {result['weights']} of {result['parameters']} parameters")
    if problems:
        raise AssertionError("; ".join(problems))
    return (f"{world} rank(s) on {result['device']}, {'bf16' if bf16 else 'fp32'}, loss {losses[0]:.3f} -> "
            f"{losses[-1]:.3f}, {result['weights']} weights streamed")


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


# -- weight transfer -----------------------------------------------------------------------------------------------


def transfer_tensors():
    """Named tensors of two dtypes and varied shapes, the same in every process."""
    import torch

    generator = torch.Generator().manual_seed(7)
    shapes = [(64, 32), (32,), (3, 5, 7), (1000,), (16, 16)]
    return [(f"layer{i}.{dtype}", torch.randn(shape, generator=generator).to(dtype))
            for dtype in (torch.float32, torch.bfloat16) for i, shape in enumerate(shapes)]


def transport_class(name: str):
    if name == "cuda_ipc":
        from skyrl_vllm.cuda_ipc import CudaIpcTransport

        return CudaIpcTransport
    from skyrl_core.weight_sync.collective import GlooTransport, NcclTransport

    return {"nccl": NcclTransport, "gloo": GlooTransport}[name]


def transfer_side(rank: int, transport: str, device: str, port: int, requests, acks) -> None:
    """Rank 0 sends :func:`transfer_tensors` chunk by chunk; rank 1 receives each and returns CPU copies."""
    import torch

    from skyrl_core.weight_sync.base import WeightSyncInitInfo, buckets_of

    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    cls = transport_class(transport)
    info = WeightSyncInitInfo(transport=transport, master_addr="127.0.0.1", master_port=port, world_size=2)
    if rank == 0:
        sender = cls.sender_cls(init_info=info)
        sender.connect()
        named = [(n, t.to(device)) for n, t in transfer_tensors()]
        for dtype in (torch.float32, torch.bfloat16):  # a chunk holds one dtype (cuda_ipc needs it)
            for chunk in buckets_of([(n, t) for n, t in named if t.dtype == dtype], dtype=dtype, bucket_bytes=4096):
                requests.put(sender.prepare(chunk))
                sender.send(chunk)
                acks.get()  # the receiver is done with the chunk before the sender may drop it
        requests.put(None)
        sender.close()
        return
    receiver = cls.receiver_cls(init_info=info, rank=1)
    receiver.connect()
    received = {}
    while (request := requests.get()) is not None:
        arrived = receiver.receive(request, torch.device(device))
        received.update({n: t.detach().to("cpu", copy=True) for n, t in arrived})
        acks.put(True)
    receiver.close()
    torch.save(received, os.environ["SKYRL_GPU_CHECK_OUT"])


def run_transfer(transport: str, devices: tuple[str, str]) -> str:
    """Send :func:`transfer_tensors` from ``devices[0]`` to ``devices[1]`` over ``transport``; raises on a mismatch."""
    import torch
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    requests, acks, port = context.Queue(), context.Queue(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "received.pt")
        spawn(transfer_side, [(rank, transport, devices[rank], port, requests, acks) for rank in (0, 1)],
              env={"SKYRL_GPU_CHECK_OUT": out})
        received = torch.load(out)
    expected = dict(transfer_tensors())
    wrong = sorted(n for n, t in expected.items() if n not in received or not torch.equal(received[n], t))
    if wrong:
        raise AssertionError(f"{transport}: {len(wrong)} of {len(expected)} tensors differ or are missing: {wrong}")
    return f"{transport} {devices[0]} -> {devices[1]}: {len(expected)} tensors bit-identical"


def check_weight_transfer() -> str:
    if cuda_devices() >= 2:
        return run_transfer("nccl", ("cuda:0", "cuda:1"))
    return run_transfer("cuda_ipc", ("cuda:0", "cuda:0")) + " (one GPU: NCCL cannot put two ranks on it)"


# -- hf engine -----------------------------------------------------------------------------------------------------


def check_hf_generate() -> str:
    cuda_devices()
    return run_hf_generate("cuda")


def run_hf_generate(device: str) -> str:
    """The ``hf`` engine on ``device`` against transformers' greedy ``generate``; raises on a difference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skyrl_core.inference.base import GenerationRequest, SamplingParams
    from skyrl_core.inference.hf import HFEngine

    with tempfile.TemporaryDirectory() as folder:
        model_path = tiny_model(Path(folder))
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        prompts = [tokenizer(f"what is {i} times {i + 3}?")["input_ids"] for i in range(4)]
        engine = HFEngine(model_path=model_path, dtype="float32", device=device)
        greedy = SamplingParams(temperature=0.0, max_tokens=12)

        async def generate_all():
            return await asyncio.gather(*(engine.generate(GenerationRequest(prompt_token_ids=p, sampling=greedy))
                                          for p in prompts))

        results = asyncio.run(generate_all())
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to(device).eval()
        ids = torch.tensor([prompts[0]], device=device)
        expected = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12,
                                  pad_token_id=tokenizer.pad_token_id)[0, len(prompts[0]):].tolist()
    if engine.device.type != torch.device(device).type:
        raise AssertionError(f"the engine runs on {engine.device}, not {device}")
    if any(not r.token_ids for r in results):
        raise AssertionError("an empty completion")
    got = results[0].token_ids
    if got != expected[:len(got)]:
        raise AssertionError(f"greedy tokens {got} differ from transformers' generate {expected}")
    return f"{len(results)} concurrent greedy requests on {engine.device}, first equal to transformers' generate"


CHECKS: dict[str, Callable[[], str]] = {
    "fsdp2": lambda: check_strategy("fsdp2"),
    "deepspeed": lambda: check_strategy("deepspeed"),
    "weight_transfer": check_weight_transfer,
    "hf_generate": check_hf_generate,
}


def run_check(name: str) -> tuple[str, float, str]:
    """``(PASS|FAIL|SKIP, seconds, detail)`` of one check."""
    start = time.monotonic()
    try:
        status, detail = "PASS", CHECKS[name]()
    except Skip as skip:
        status, detail = "SKIP", str(skip)
    except Exception as exc:  # noqa: BLE001 - a failed check is reported, the others still run
        traceback.print_exc()
        status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
    return status, time.monotonic() - start, detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checks", nargs="*", help=f"checks to run: {', '.join(CHECKS)} (default: all)")
    names = parser.parse_args(argv).checks or list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    results = []
    for name in names:
        status, seconds, detail = run_check(name)
        results.append(status)
        print(f"{status} {name:<16} {seconds:6.1f}s  {detail}", flush=True)
    counts = {s: results.count(s) for s in ("PASS", "FAIL", "SKIP")}
    print(f"summary: {len(results)} checks, " + ", ".join(f"{n} {s}" for s, n in counts.items()), flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
