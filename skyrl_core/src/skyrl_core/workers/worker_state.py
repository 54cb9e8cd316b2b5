"""A training worker's weights and state: streaming weights to the engines, offload, checkpoints, RNG states."""

from __future__ import annotations

import os
from typing import Any

import torch

from skyrl_core.trainer.checkpoint import python_rng_state, set_python_rng_state
from skyrl_core.weight_sync.base import WeightSyncInitInfo, dtype_of


def rng_state() -> dict[str, Any]:
    """This process's random streams (torch CPU and CUDA, Python's ``random``), loadable with
    ``torch.load(..., weights_only=True)``."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": python_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    set_python_rng_state(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class WorkerStateMixin:
    """The parts of :class:`~skyrl_core.workers.train_worker.TrainWorker` that move weights and state."""

    strategy: Any
    role: str
    rank: int
    config: Any
    pm: Any
    _sender: Any

    # -- weight sync (policy) -----------------------------------------------------------------------------------

    def init_weight_sender(self, info: WeightSyncInitInfo) -> None:
        """Rank 0 builds and connects the sender (while every engine connects its receivers)."""
        if self.rank != 0:
            return
        from skyrl_core.config.loader import component_section

        transport = self.pm.registry("weight_sync_backends")[info.transport]
        section = component_section(self.config.generator, info.transport, "weight_sync_backends", self.pm)
        self._sender = transport.sender_cls(config=section, init_info=info)
        self._sender.connect()

    def send_weights(self, engines: list[Any], dtype: str, bucket_bytes: int) -> dict[str, float]:
        """Stream the weights to ``engines`` chunk by chunk. Every rank iterates (sharded strategies gather per
        chunk); rank 0 describes each chunk to the engines and sends it while they receive. Returns the bytes
        sent and the largest chunk (rank 0)."""
        import ray

        sent, largest = 0, 0
        for chunk in self.strategy.iter_weights(dtype=dtype_of(dtype), bucket_bytes=bucket_bytes):
            if self.rank == 0:
                request = self._sender.prepare(chunk)
                pending = [engine.update_weights.remote(request) for engine in engines]
                self._sender.send(chunk)
                ray.get(pending)
                sent += chunk.nbytes
                largest = max(largest, chunk.nbytes)
            del chunk
        return {"bytes": float(sent), "largest_chunk_bytes": float(largest)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The full weights in fp32 (tests); every rank must call it."""
        out: dict[str, torch.Tensor] = {}
        for chunk in self.strategy.iter_weights(dtype=torch.float32, bucket_bytes=1 << 26):
            out.update({n: t.detach().cpu().clone() for n, t in zip(chunk.names, chunk.tensors, strict=True)})
        return out

    # -- memory -------------------------------------------------------------------------------------------------

    def offload(self, model: bool = True, optimizer: bool = True) -> None:
        self.strategy.offload(model=model, optimizer=optimizer)

    def onload(self, model: bool = True, optimizer: bool = True) -> None:
        self.strategy.onload(model=model, optimizer=optimizer)

    # -- checkpoints --------------------------------------------------------------------------------------------

    def save_checkpoint(self, folder: str) -> None:
        """The strategy's state into ``folder/<role>`` and this rank's RNG states into ``folder/rng``."""
        target = os.path.join(folder, self.role)
        os.makedirs(target, exist_ok=True)
        os.makedirs(os.path.join(folder, "rng"), exist_ok=True)
        self.strategy.save_checkpoint(target)
        torch.save(rng_state(), os.path.join(folder, "rng", f"{self.role}_rank_{self.rank}.pt"))

    def load_checkpoint(self, folder: str, load_optimizer: bool = True) -> None:
        """Restore :meth:`save_checkpoint`'s state; RNG states only when this rank saved some (same layout)."""
        self.strategy.load_checkpoint(os.path.join(folder, self.role), load_optimizer=load_optimizer)
        path = os.path.join(folder, "rng", f"{self.role}_rank_{self.rank}.pt")
        if os.path.isfile(path):
            set_rng_state(torch.load(path, weights_only=True))

    def probe_logprobs(self, token_ids: list[int]) -> list[float]:
        """``log p(token_ids[t] | token_ids[:t])`` for ``t >= 1`` at temperature 1 (the weight-sync check); every
        rank runs the forward (sharded strategies need all of them)."""
        from skyrl_core.workers.logprobs import response_logprobs

        ids = torch.tensor([token_ids], device=self.strategy.device)
        self.strategy.set_train(False)
        with torch.no_grad():
            logprobs, _ = response_logprobs(self.strategy.forward, ids, torch.ones_like(ids), len(token_ids) - 1)
        return logprobs[0].float().tolist()

    def export_hf(self, folder: str, bucket_bytes: int = 1 << 30) -> None:
        """Write the policy as an HF model folder (rank 0 writes; every rank streams)."""
        from skyrl_core.export import write_hf_folder

        chunks = self.strategy.iter_weights(dtype=torch.float32, bucket_bytes=bucket_bytes)
        if self.rank == 0:
            write_hf_folder(chunks, self.config.trainer.policy.model.path, folder)
        else:
            for _ in chunks:
                pass
