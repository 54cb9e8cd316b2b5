"""The device handoff between training and generation, in one place.

Colocated (``trainer.placement.colocate_all``), the engines and the trainer time-share the devices, in the order
vLLM documents for colocation, so that at no moment do the engine's KV cache and the optimizer state both occupy
the device: engines sleep -> train -> offload optimizer -> wake weights -> sync -> offload model -> wake kv_cache
-> generate. Not colocated, engines stay awake and the policy stays on its devices; only the sync happens.

On CPU the strategies' offload and the hf engine's sleep are cheap, but the order is the same everywhere.
"""

from __future__ import annotations

from typing import Any, Literal

Phase = Literal["generate", "train", "sync"]


class DeviceHandoff:
    """Moves the run between its three phases; each method is a no-op when already in that phase.

    ``engines`` needs ``sleep(level)`` and ``wake_up(tags)``; ``groups`` (policy first, then ref/critic) need
    ``offload(model=, optimizer=)`` and ``onload(model=, optimizer=)``. ``offload_optimizer`` is
    ``trainer.policy.optimizer_config.offload_after_step``.
    """

    def __init__(self, *, engines: Any, groups: list[Any], colocated: bool, offload_optimizer: bool = True,
                 sleep_level: int = 1):
        self.engines, self.groups = engines, groups
        self.colocated, self.offload_optimizer, self.sleep_level = colocated, offload_optimizer, sleep_level
        self.phase: Phase = "generate"

    def to_train(self) -> None:
        """Engines sleep, then the trainer's model and optimizer come back on the device."""
        if self.phase == "train":
            return
        if self.colocated:
            self.engines.sleep(self.sleep_level)
            for group in self.groups:
                group.onload(model=True, optimizer=True)
        self.phase = "train"

    def to_sync(self) -> None:
        """The optimizer state leaves the device, the engines' weights come back (no KV cache yet)."""
        if self.phase == "sync":
            return
        self.to_train()
        if self.colocated:
            if self.offload_optimizer:
                for group in self.groups:
                    group.offload(model=False, optimizer=True)
            self.engines.wake_up(["weights"])
        self.phase = "sync"

    def to_generate(self) -> None:
        """The trainer's models leave the device, then the engines get their KV cache back."""
        if self.phase == "generate":
            return
        if self.colocated:
            for group in self.groups:
                group.offload(model=True, optimizer=self.offload_optimizer)
            self.engines.wake_up(["kv_cache"] if self.phase == "sync" else None)
        self.phase = "generate"
