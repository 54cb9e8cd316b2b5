"""The driver's side of weight sync: connect the transport once, then stream the policy's weights every step and
check that the engines got them.

The check: after a sync every engine's log-probs of a fixed token sequence (temperature 1) are compared with the
policy's; a mean absolute difference above the tolerance (``1e-3`` when both sides compute in fp32, ``0.1``
otherwise: bf16 rounding alone moves log-probs by a few hundredths) fails the run, naming the engine. It catches
an engine that kept stale or wrong weights; it cannot see a difference smaller than its tolerance.
"""

from __future__ import annotations

from typing import Any

from skyrl_core.config.loader import component_section
from skyrl_core.weight_sync.base import WeightSyncInitInfo
from skyrl_core.workers.engine_actor import engine_dtype

#: The probe sequence: small ids, valid in any vocabulary.
PROBE_TOKENS = [1, 5, 2, 9, 3, 7, 4, 8, 6, 10, 11, 13, 12, 15, 14, 16]


class WeightSyncError(RuntimeError):
    """An engine's weights disagree with the policy's after a sync."""


class WeightSyncDriver:
    """Orchestrates ``generator.weight_sync_backend`` between the policy group and every engine."""

    def __init__(self, config: Any, actors: Any):
        import ray

        self.actors = actors
        self.transport = config.generator.weight_sync_backend
        section = component_section(config.generator, self.transport, "weight_sync_backends", actors.pm)
        self.bucket_bytes = int((section.bucket_size_mb if section is not None else 256.0) * 2**20)
        engines, policy = actors.engines, actors.policy.actors
        # the dtype on the wire: what the engines ask for (e.g. fp32 for the hf engine's bf16 autocast mode)
        self.dtype = ray.get(engines[0].weight_transfer_dtype.remote()) if engines else engine_dtype(config)
        self.tolerance = 1e-3 if engine_dtype(config) == "float32" and not config.trainer.bf16 else 0.1
        receivers = ray.get([engine.num_receivers.remote() for engine in engines])
        addr, port = ray.get(policy[0].free_address.remote())
        info = WeightSyncInitInfo(transport=self.transport, master_addr=addr, master_port=port,
                                  world_size=1 + sum(receivers))
        first_ranks = [1 + sum(receivers[:i]) for i in range(len(engines))]
        ray.get([policy[0].init_weight_sender.remote(info)]
                + [e.init_weight_receivers.remote(info, first) for e, first in zip(engines, first_ranks)])

    def sync(self) -> dict[str, float]:
        """Stream the policy's weights to every engine, reset their prefix caches, and check them."""
        import ray

        engines = self.actors.engines
        stats = ray.get([a.send_weights.remote(engines, self.dtype, self.bucket_bytes)
                         for a in self.actors.policy.actors])[0]
        ray.get([engine.reset_prefix_cache.remote() for engine in engines])
        gap = self.check()
        return {"weight_sync/bytes": stats["bytes"], "weight_sync/probe_gap": gap}

    def check(self) -> float:
        """The largest mean absolute log-prob gap between an engine and the policy on :data:`PROBE_TOKENS`."""
        import ray

        policy = ray.get([a.probe_logprobs.remote(PROBE_TOKENS) for a in self.actors.policy.actors])[0]
        worst = 0.0
        for index, engine_lp in enumerate(ray.get([e.probe_logprobs.remote(PROBE_TOKENS)
                                                   for e in self.actors.engines])):
            gap = sum(abs(a - b) for a, b in zip(engine_lp, policy, strict=True)) / len(policy)
            if not gap <= self.tolerance:
                raise WeightSyncError(
                    f"weight sync check failed: inference engine {index} gives log-probs that differ from the "
                    f"policy's by {gap:.4g} on average (tolerance {self.tolerance}) after syncing over "
                    f"'{self.transport}': the engine did not receive the new weights. Try "
                    "generator.weight_sync_backend=ray, and report the engine backend and transport"
                )
            worst = max(worst, gap)
        return worst
