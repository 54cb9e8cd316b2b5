"""The ``hf`` engine's weights: where they are (device, offloaded, dropped) and loading received tensors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from skyrl_core.inference.base import EngineStateError, WeightsState


class ModelWeights:
    """Moves a model's weights for ``sleep``/``wake_up`` and copies received tensors into them (compute thread).

    After a level-2 sleep (:meth:`drop`) and :meth:`restore`, the parameters hold garbage until each has been
    received again; :meth:`check_usable` refuses generation until then, naming one that is missing.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model: torch.nn.Module | None = model
        self.device = device
        self.state: WeightsState = "device"
        self._buffers: dict[str, torch.Tensor] = {}
        self._missing: dict[int, str] = {}  # id(parameter) -> name, while not received since a level-2 wake

    def check_usable(self, what: str) -> None:
        if self.model is None:
            raise EngineStateError("HFEngine has been shut down")
        if self.state != "device":
            raise EngineStateError(f"HFEngine.{what}: the weights are {self.state}; call wake_up(['weights']) first")
        if self._missing:
            name = next(iter(self._missing.values()))
            raise EngineStateError(
                f"HFEngine.{what}: after sleep(level=2) every weight must be received again (update_weights); "
                f"{len(self._missing)} are missing, e.g. {name!r}"
            )

    def offload(self) -> None:
        """Level-1 sleep: the weights go to CPU (where they already are on a CPU engine)."""
        if self.state == "device":
            self._module().to("cpu")
            self.state = "offloaded"
            _empty_device_cache(self.device)

    def drop(self) -> None:
        """Level-2 sleep: parameters are freed (moved to ``meta``); buffers are kept on CPU."""
        if self.state == "dropped":
            return
        model = self._module()
        self._buffers = {name: b.detach().to("cpu", copy=True) for name, b in model.named_buffers()}
        model.to("meta")
        self.state = "dropped"
        _empty_device_cache(self.device)

    def restore(self) -> None:
        """``wake_up(["weights"])``: back on the device (allocated but unset after :meth:`drop`)."""
        model = self._module()
        if self.state == "offloaded":
            model.to(self.device)
        elif self.state == "dropped":
            model.to_empty(device=self.device)
            if getattr(getattr(model, "config", None), "tie_word_embeddings", False):
                model.tie_weights()
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(self._buffers[name])
            self._buffers = {}
            self._missing = {id(p): name for name, p in model.named_parameters()}
        self.state = "device"

    def load(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy each tensor into the parameter or buffer of that ``state_dict`` name, cast to its dtype."""
        if self.state != "device":
            raise EngineStateError(f"HFEngine.update_weights: the weights are {self.state}; "
                                   "call wake_up(['weights']) first")
        targets = self._module().state_dict(keep_vars=True)
        with torch.no_grad():
            for name, tensor in named_tensors:
                target = targets.get(name)
                if target is None:
                    raise KeyError(f"HFEngine.update_weights: the model has no weight named {name!r}")
                if tuple(tensor.shape) != tuple(target.shape):
                    raise ValueError(f"HFEngine.update_weights: {name!r} has shape {tuple(tensor.shape)}, "
                                     f"expected {tuple(target.shape)}")
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
                self._missing.pop(id(target), None)

    def state_dict(self) -> dict[str, Any]:
        """A CPU copy of every ``state_dict`` entry (tied names included)."""
        self.check_usable("state_dict")
        return {name: t.detach().to("cpu", copy=True) for name, t in self._module().state_dict().items()}

    def release(self) -> None:
        self.model = None
        _empty_device_cache(self.device)

    def _module(self) -> torch.nn.Module:
        if self.model is None:
            raise EngineStateError("HFEngine has been shut down")
        return self.model


def _empty_device_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
