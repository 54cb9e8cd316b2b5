"""The device handoff: its order, and that nothing generates on a sleeping engine or trains offloaded."""

from __future__ import annotations

import pytest

from skyrl_core.trainer.handoff import DeviceHandoff


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []


class FakeEngines:
    """Engines that refuse to generate unless both their weights and their KV cache are on the device."""

    def __init__(self, log: Recorder) -> None:
        self.log, self.awake = log, {"weights", "kv_cache"}

    def sleep(self, level: int) -> None:
        self.log.calls.append(f"engines.sleep({level})")
        self.awake = set()

    def wake_up(self, tags: list[str] | None) -> None:
        self.log.calls.append(f"engines.wake_up({tags})")
        self.awake |= set(tags or ("weights", "kv_cache"))

    def generate(self) -> None:
        if self.awake != {"weights", "kv_cache"}:
            raise AssertionError("generated on a sleeping engine")

    def receive_weights(self) -> None:
        if "weights" not in self.awake:
            raise AssertionError("weights sent to an engine without its weights on the device")


class FakeGroup:
    def __init__(self, log: Recorder, name: str) -> None:
        self.log, self.name, self.on_device = log, name, {"model", "optimizer"}

    def offload(self, *, model: bool, optimizer: bool) -> None:
        self.log.calls.append(f"{self.name}.offload(model={model}, optimizer={optimizer})")
        self.on_device -= {k for k, v in (("model", model), ("optimizer", optimizer)) if v}

    def onload(self, *, model: bool, optimizer: bool) -> None:
        self.log.calls.append(f"{self.name}.onload(model={model}, optimizer={optimizer})")
        self.on_device |= {k for k, v in (("model", model), ("optimizer", optimizer)) if v}

    def train(self) -> None:
        if self.on_device != {"model", "optimizer"}:
            raise AssertionError("trained an offloaded policy")


def _step(handoff: DeviceHandoff, engines: FakeEngines, policy: FakeGroup) -> None:
    handoff.to_generate()
    engines.generate()
    handoff.to_train()
    policy.train()
    handoff.to_sync()
    engines.receive_weights()
    handoff.to_generate()
    engines.generate()


def test_colocated_step_follows_the_documented_order():
    log = Recorder()
    engines, policy = FakeEngines(log), FakeGroup(log, "policy")
    handoff = DeviceHandoff(engines=engines, groups=[policy], colocated=True)
    _step(handoff, engines, policy)
    assert log.calls == [
        "engines.sleep(1)",
        "policy.onload(model=True, optimizer=True)",
        "policy.offload(model=False, optimizer=True)",
        "engines.wake_up(['weights'])",
        "policy.offload(model=True, optimizer=True)",
        "engines.wake_up(['kv_cache'])",
    ]
    log.calls.clear()
    _step(handoff, engines, policy)  # the second step is the same
    assert len(log.calls) == 6 and log.calls[0] == "engines.sleep(1)"


def test_not_colocated_nothing_sleeps_or_moves():
    log = Recorder()
    engines, policy = FakeEngines(log), FakeGroup(log, "policy")
    _step(DeviceHandoff(engines=engines, groups=[policy], colocated=False), engines, policy)
    assert log.calls == []


def test_the_fakes_catch_a_wrong_order():
    log = Recorder()
    engines, policy = FakeEngines(log), FakeGroup(log, "policy")
    handoff = DeviceHandoff(engines=engines, groups=[policy], colocated=True)
    handoff.to_train()
    with pytest.raises(AssertionError, match="sleeping engine"):
        engines.generate()
    handoff.to_generate()
    with pytest.raises(AssertionError, match="offloaded"):
        policy.train()


def test_generation_straight_after_training_wakes_everything():
    log = Recorder()
    engines, policy = FakeEngines(log), FakeGroup(log, "policy")
    handoff = DeviceHandoff(engines=engines, groups=[policy], colocated=True, offload_optimizer=False)
    handoff.to_train()
    handoff.to_generate()
    engines.generate()
    assert log.calls[-2:] == ["policy.offload(model=True, optimizer=False)", "engines.wake_up(None)"]
