"""The driver's side of weight sync: set up the transport once, then move the policy's weights every step."""

from __future__ import annotations

from typing import Any


class WeightSyncDriver:
    """Orchestrates ``generator.weight_sync_backend`` between policy rank 0 and every engine."""

    def __init__(self, config: Any, actors: Any):
        import ray

        self.actors = actors
        self.backend = config.generator.weight_sync_backend
        self.two_phase = actors.pm.registry("weight_sync_backends")[self.backend].two_phase
        engines = actors.engines
        policy = actors.policy.actors
        addr, port = ray.get(policy[0].free_address.remote())
        ray.get([policy[0].init_weight_sync.remote(self.backend, addr, port, len(engines))]
                + [e.init_weight_sync.remote(self.backend, addr, port, len(engines)) for e in engines])
        self.specs = ray.get(engines[0].parameter_specs.remote())

    def sync(self) -> None:
        """Send the policy's current weights to every engine (engines are woken first when colocated)."""
        import ray

        self.actors.wake_engines()
        policy, engines = self.actors.policy.actors, self.actors.engines
        if self.two_phase:
            payload = ray.get([a.send_weights.remote(self.specs) for a in policy])[0]
            ray.get([e.receive_weights.remote(self.specs, payload) for e in engines])
        else:
            ray.get([a.send_weights.remote(self.specs) for a in policy]
                    + [e.receive_weights.remote(self.specs) for e in engines])
