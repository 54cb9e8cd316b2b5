"""The ``trainer.deepspeed`` section and the DeepSpeed config the strategy builds from it (no deepspeed import)."""

from __future__ import annotations

import copy
from typing import Any

import attrs

from skyrl_core.errors import UserError
from skyrl_core.trainer.memory_fit import Sharding

DEFAULT_STAGE = 3
STAGES = (1, 2, 3)

#: DeepSpeed keys skyrl sets itself, with the skyrl key that controls each.
OWNED_KEYS = {
    "train_batch_size": "trainer.train_batch_size / trainer.policy_mini_batch_size",
    "train_micro_batch_size_per_gpu": "trainer.micro_train_batch_size_per_gpu",
    "gradient_accumulation_steps": "trainer.micro_train_batch_size_per_gpu (micro-batches per mini-batch)",
    "gradient_clipping": "trainer.<role>.optimizer_config.max_grad_norm",
    "optimizer": "trainer.<role>.optimizer_config (torch AdamW)",
    "scheduler": "trainer.<role>.optimizer_config.scheduler",
    "bf16": "trainer.bf16",
}
#: Accepted by DeepSpeed but not by this strategy yet.
UNSUPPORTED_KEYS = {"fp16": "fp16 with loss scaling is not supported yet; use trainer.bf16=true or false"}


@attrs.define(kw_only=True)
class DeepSpeedConfig:
    deepspeed_config: dict[str, Any] = attrs.field(
        factory=dict,
        metadata={"help": "DeepSpeed's own config keys, passed through, e.g. zero_optimization.stage (1, 2 or 3; "
                          f"default {DEFAULT_STAGE}), zero_optimization.offload_optimizer.device=cpu, "
                          "zero_optimization.offload_param.device=cpu. Batch sizes, clipping, optimizer, schedule "
                          "and bf16 come from skyrl's own keys."})

    def memory_sharding(self, world_size: int, bf16: bool) -> Sharding:
        """With bf16: bf16 weights and gradients, the fp32 master copy with AdamW's m and v (2 + 2 + 12 bytes per
        parameter), else 4 + 4 + 8. ZeRO-1 splits the optimizer state over the ranks, ZeRO-2 also the gradients,
        ZeRO-3 also the weights; ``offload_optimizer`` / ``offload_param`` (any device but none) move them out of
        GPU memory."""
        stage = zero_stage(self)
        zero = self.deepspeed_config.get("zero_optimization", {})
        offloaded = {part for part, key in (("optimizer", "offload_optimizer"), ("params", "offload_param"))
                     if zero.get(key, {}).get("device", "none") != "none"}
        return Sharding(param_bytes=2 if bf16 else 4, grad_bytes=2 if bf16 else 4, optimizer_bytes=12 if bf16 else 8,
                        params_shards=world_size if stage == 3 else 1, grads_shards=world_size if stage >= 2 else 1,
                        optimizer_shards=world_size, offloaded=frozenset(offloaded))


def zero_stage(section: DeepSpeedConfig) -> int:
    stage = section.deepspeed_config.get("zero_optimization", {}).get("stage", DEFAULT_STAGE)
    if stage not in STAGES:
        raise UserError(f"deepspeed_config.zero_optimization.stage={stage!r} (trainer.deepspeed.* or "
                        "trainer.<role>.*) is not supported: use 1, 2 or 3 (for no sharding use trainer.strategy=ddp)")
    return stage


def engine_config(section: DeepSpeedConfig, *, bf16: bool, max_grad_norm: float, trainable: bool = True
                  ) -> dict[str, Any]:
    """The config dict for ``deepspeed.initialize``: the user's ``deepspeed_config`` plus the keys skyrl owns.

    A model without an optimizer (a ref) has no optimizer state or gradients to partition: under ZeRO 1 and 2 it
    is a plain replica (stage 0; DeepSpeed refuses those stages without an optimizer), under ZeRO 3 its parameters
    stay partitioned.

    One micro-batch per ``engine.backward`` and ``gradient_accumulation_steps=1``: the strategy marks the last
    micro-batch of a mini-batch itself (``set_gradient_accumulation_boundary``). With optimizer offload, skyrl's
    torch AdamW steps the CPU partition (``zero_force_ds_cpu_optimizer: false``), so no op is compiled.
    """
    user = section.deepspeed_config
    for key, owner in OWNED_KEYS.items():
        if key in user:
            raise UserError(f"deepspeed_config.{key} (trainer.deepspeed.* or trainer.<role>.*) is set by skyrl "
                            f"from {owner}; remove it")
    for key, reason in UNSUPPORTED_KEYS.items():
        if key in user:
            raise UserError(f"deepspeed_config.{key} (trainer.deepspeed.* or trainer.<role>.*): {reason}")
    config = copy.deepcopy(user)
    stage = zero_stage(section)
    config.setdefault("zero_optimization", {})["stage"] = stage if trainable or stage == 3 else 0
    if "offload_optimizer" in config["zero_optimization"]:
        config.setdefault("zero_force_ds_cpu_optimizer", False)
    config.setdefault("steps_per_print", 2**31 - 1)  # no progress lines of its own
    config.update(
        train_micro_batch_size_per_gpu=1,
        gradient_accumulation_steps=1,
        gradient_clipping=max(float(max_grad_norm), 0.0),
        bf16={"enabled": bool(bf16)},
    )
    return config
