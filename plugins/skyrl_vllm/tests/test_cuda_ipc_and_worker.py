"""CUDA IPC handle bookkeeping (pure parts, on CPU tensors) and the vLLM worker extension with a CPU transport."""

from __future__ import annotations

import pytest
import torch

from skyrl_core.errors import UserError
from skyrl_core.testing.engine_conformance import INLINE, InlineTransport, _InlinePlugin
from skyrl_core.weight_sync.base import WeightChunk, WeightSyncInitInfo, WeightUpdateRequest, buckets_of
from skyrl_vllm.cuda_ipc import (
    CudaIpcPayload,
    CudaIpcSender,
    CudaIpcTransport,
    flat_ranges,
    pack,
    pick_handle,
    unpack,
    with_device_index,
)
from skyrl_vllm.worker_ext import SkyrlWorkerExtension, encode


def test_flat_ranges():
    assert flat_ranges([6, 1, 4]) == [(0, 6), (6, 7), (7, 11)]


def test_device_index_is_argument_six():
    args = tuple(range(15))
    moved = with_device_index(args, 3)
    assert moved[6] == 3 and moved[:6] == args[:6] and moved[7:] == args[7:]


def test_pick_handle_prefers_the_local_order_and_names_both_sides_when_absent():
    payload = CudaIpcPayload(handles={"GPU-b": tuple(range(8)), "GPU-a": tuple(range(10, 18))})
    index, args = pick_handle(payload, ["GPU-a", "GPU-b"])
    assert index == 0 and args[0] == 10 and args[6] == 0
    index, args = pick_handle(payload, ["GPU-x", "GPU-b"])
    assert index == 1 and args[6] == 1 and args[0] == 0
    with pytest.raises(UserError, match="GPU-x.*GPU-a"):
        pick_handle(payload, ["GPU-x"])


def test_pack_then_unpack_round_trips_views():
    tensors = [torch.arange(6.0).view(2, 3), torch.tensor([7.0]), torch.arange(4.0).view(2, 2).t()]
    chunk = WeightChunk(names=["a", "b", "c"], tensors=tensors)
    flat = pack(chunk.tensors)
    assert flat.shape == (11,)
    request = WeightUpdateRequest.describe(chunk)
    out = dict(unpack(flat, request))
    for name, tensor in zip(chunk.names, tensors):
        assert torch.equal(out[name], tensor)
    assert out["a"].data_ptr() == flat.data_ptr()  # views, not copies
    lone = torch.arange(5.0)
    assert pack([lone]).data_ptr() == lone.data_ptr()
    with pytest.raises(ValueError, match="one dtype"):
        pack([torch.zeros(1), torch.zeros(1, dtype=torch.bfloat16)])
    with pytest.raises(RuntimeError, match="11 elements"):
        list(unpack(flat, WeightUpdateRequest(names=["a"], dtypes=["float32"], shapes=[(2,)])))


def test_sender_refuses_cpu_tensors():
    sender = CudaIpcSender(init_info=WeightSyncInitInfo(transport="cuda_ipc", master_addr="", master_port=0,
                                                        world_size=2))
    with pytest.raises(UserError, match="CUDA"):
        sender.prepare(WeightChunk(names=["w"], tensors=[torch.zeros(2)]))


def test_merge_joins_the_handles_of_each_gpu():
    chunk = WeightChunk(names=["w"], tensors=[torch.zeros(2)])
    one = WeightUpdateRequest.describe(chunk, CudaIpcPayload(handles={"GPU-0": (1,)}))
    two = WeightUpdateRequest.describe(chunk, CudaIpcPayload(handles={"GPU-1": (2,)}))
    merged = CudaIpcTransport.merge([one, two])
    assert merged.payload.handles == {"GPU-0": (1,), "GPU-1": (2,)} and merged.names == ["w"]
    other = WeightUpdateRequest.describe(WeightChunk(names=["v"], tensors=[torch.zeros(2)]), two.payload)
    with pytest.raises(ValueError, match="different chunks"):
        CudaIpcTransport.merge([one, other])
    assert CudaIpcTransport.same_device_ok and CudaIpcTransport.device_types == ("cuda",)


class FakeModel:
    def __init__(self):
        self.loaded: dict[str, torch.Tensor] = {}

    def load_weights(self, weights):
        for name, tensor in weights:
            self.loaded[name] = tensor.clone()


class FakeWorker(SkyrlWorkerExtension):
    def __init__(self, rank):
        self.rank, self.device = rank, torch.device("cpu")
        self.model_runner = type("Runner", (), {"model": FakeModel()})()


def test_worker_extension_builds_its_receiver_and_loads_hf_names(register_plugin):
    register_plugin(_InlinePlugin())
    info = WeightSyncInitInfo(transport=INLINE, master_addr="127.0.0.1", master_port=0, world_size=3)
    workers = [FakeWorker(0), FakeWorker(1)]
    for worker in workers:
        worker.skyrl_init_receiver(encode(info, 1))
    assert [w._skyrl_receiver.rank for w in workers] == [1, 2]
    weights = {"model.layers.0.self_attn.q_proj.weight": torch.randn(4, 4), "lm_head.weight": torch.randn(3, 4)}
    sender = InlineTransport.sender_cls(init_info=info)
    for chunk in buckets_of(weights.items(), dtype=torch.float32, bucket_bytes=64):
        for worker in workers:
            worker.skyrl_update_weights(encode(sender.prepare(chunk)))
    for worker in workers:
        assert worker.model_runner.model.loaded.keys() == weights.keys()
        assert all(torch.equal(worker.model_runner.model.loaded[k], v) for k, v in weights.items())
        worker.skyrl_close_receiver()
        assert worker._skyrl_receiver is None
    with pytest.raises(RuntimeError, match="before skyrl_init_receiver"):
        workers[0].skyrl_update_weights(encode(sender.prepare(chunk)))
