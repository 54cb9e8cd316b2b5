"""Streaming weight sync keeps the sender's memory flat: a sync of a 50M-parameter model raises the sending
process's peak resident memory by at most one bucket plus the largest parameter plus a stated slack."""

from __future__ import annotations

import multiprocessing
import socket
from pathlib import Path

import pytest
import torch

from skyrl_core.weight_sync.base import WeightSyncInitInfo, WeightUpdateRequest, buckets_of
from skyrl_core.weight_sync.collective import BroadcastReceiver, BroadcastSender

BUCKET = 40 << 20  # two parameters per chunk, so chunks are concatenated into one buffer
#: Allocator and gloo overhead allowed on top of a bucket and the largest parameter.
SLACK = 24 << 20


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    # 12 x (1024 x 4096) linear layers = 50.3M parameters, 201 MB in fp32; the largest parameter is 16 MB
    return torch.nn.Sequential(*[torch.nn.Linear(1024, 4096, bias=False) for _ in range(12)])


def _receive(info: WeightSyncInitInfo, queue: multiprocessing.Queue) -> None:
    with torch.device("meta"):
        layout = _model()
    receiver = BroadcastReceiver(init_info=info, rank=1)
    receiver.connect()
    total = 0.0
    for chunk in buckets_of(layout.state_dict().items(), dtype=torch.float32, bucket_bytes=BUCKET):
        for _name, tensor in receiver.receive(WeightUpdateRequest.describe(chunk), torch.device("cpu")):
            total += float(tensor.double().sum())
    queue.put(total)


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak RSS")
def test_sender_peak_memory_is_one_bucket_plus_one_parameter():
    model = _model()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    info = WeightSyncInitInfo(transport="gloo", master_addr="127.0.0.1", master_port=port, world_size=2)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_receive, args=(info, queue))
    process.start()
    sender = BroadcastSender(init_info=info)
    sender.connect()
    largest = max(p.numel() * p.element_size() for p in model.parameters())
    Path("/proc/self/clear_refs").write_text("5")  # reset this process's peak RSS (VmHWM) to the current RSS
    before = _status("VmRSS")
    for chunk in buckets_of(model.state_dict().items(), dtype=torch.float32, bucket_bytes=BUCKET):
        sender.send(chunk)
        del chunk
    extra = _status("VmHWM") - before
    received = queue.get(timeout=120)
    process.join(timeout=60)
    expected = sum(float(p.detach().double().sum()) for p in model.parameters())
    assert received == pytest.approx(expected, rel=1e-9)
    print(f"sender extra peak: {extra / 2**20:.1f} MB (bucket {BUCKET >> 20} MB, largest parameter "
          f"{largest >> 20} MB, model {sum(p.numel() for p in model.parameters()) * 4 >> 20} MB)")
    assert extra <= BUCKET + largest + SLACK
