"""Will the run fit in memory? An estimate from the models' ``config.json``, checked before anything starts.

Parameters are counted exactly and cheaply: the HF config is read (a local folder or the Hugging Face cache,
never the network) and the model built on the ``meta`` device, which allocates nothing. Per parameter, each rank
of a training group of N ranks holds, in bytes (:class:`Sharding`, declared by the strategy, says how it splits
them and which parts it offloads to CPU memory)::

    weights    param_bytes     / params_shards      4 (fp32 weights under bf16 autocast: ddp, fsdp2)
    gradients  grad_bytes      / grads_shards       4
    AdamW      optimizer_bytes / optimizer_shards   8 (m and v in fp32)

16 bytes per parameter unsharded; DeepSpeed with ``trainer.bf16`` holds bf16 weights and gradients and keeps the
fp32 master copy with the optimizer (2 + 2 + 12, the ZeRO paper's mixed-precision count). ddp keeps a full copy
per rank; fsdp2 and ZeRO-3 split all three over N (fsdp2's ``fsdp_size`` ranks when set), ZeRO-1 the optimizer
state, ZeRO-2 also the gradients. The ref model (``use_kl_loss`` or ``use_kl_in_reward``) holds weights only; a
critic is a trainable model with a one-label value head. Each inference engine holds the policy's weights in the
engine dtype (2 bytes in bfloat16/float16, 4 in float32), split over its tensor-parallel ranks.

Where it must fit:

- without GPUs every process shares the machine's RAM: the need is the sum over every rank and engine, against
  the memory available now (psutil) or, joining a cluster through ``RAY_ADDRESS``, the ``memory`` Ray reports
  for its alive nodes (the largest single process must also fit on the largest node);
- with GPUs, per GPU: colocated (``colocate_all``), one rank of each training group plus one engine's share;
  otherwise the largest single actor; offloaded parts are not counted. Against the smallest local GPU's total
  memory (read without a CUDA context in the driver, which would keep part of every GPU for the whole run).

Activations, the KV cache and allocator overhead are not counted, so the estimate is a lower bound: above the
memory there is, the run is refused (exit 2; ``trainer.memory_check=warn`` runs it anyway); above
:data:`WARN_FRACTION` of it, one warning.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from skyrl_core.errors import UserError

GIB = 1 << 30
#: Above this fraction of the memory there is, a warning.
WARN_FRACTION = 0.8
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@attrs.frozen
class Sharding:
    """How a strategy holds one trainable model on each of its ranks: bytes per parameter of each part, how many
    ranks split each part, and which parts live in CPU memory. The default is a full fp32 copy per rank (ddp).

    A strategy declares it with a ``memory_sharding(world_size, bf16)`` method on its config class."""

    param_bytes: int = 4
    grad_bytes: int = 4
    optimizer_bytes: int = 8
    params_shards: int = 1
    grads_shards: int = 1
    optimizer_shards: int = 1
    offloaded: frozenset[str] = frozenset()  # of "params", "grads", "optimizer"

    def per_rank(self, params: int, *, trainable: bool, on_gpu: bool) -> dict[str, float]:
        """Bytes one rank holds (on its device when ``on_gpu``: offloaded parts left out)."""
        parts = {"weights": ("params", params * self.param_bytes / self.params_shards)}
        if trainable:
            parts["gradients"] = ("grads", params * self.grad_bytes / self.grads_shards)
            parts["AdamW"] = ("optimizer", params * self.optimizer_bytes / self.optimizer_shards)
        return {name: size for name, (part, size) in parts.items() if not (on_gpu and part in self.offloaded)}


@attrs.frozen
class Need:
    """One kind of actor of the run: how many there are and what each holds (bytes by part)."""

    label: str
    count: int
    parts: dict[str, float]

    @property
    def each(self) -> float:
        return sum(self.parts.values())

    def describe(self) -> str:
        detail = " + ".join(f"{name} {size / GIB:.1f}" for name, size in self.parts.items())
        return f"{self.label}: {self.count} x {self.each / GIB:.1f} GiB ({detail})"


def count_parameters(path: str, config_kwargs: dict[str, Any], head: str = "lm") -> int:
    """Parameters of the model at ``path`` (shared tensors once), built on the meta device from its config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification

    kwargs = {**config_kwargs, **({"num_labels": 1} if head == "value" else {})}
    hf_config = AutoConfig.from_pretrained(os.path.expanduser(path), local_files_only=True, **kwargs)
    loader = AutoModelForTokenClassification if head == "value" else AutoModelForCausalLM
    with torch.device("meta"):
        model = loader.from_config(hf_config)
    return sum(p.numel() for p in model.parameters())


def strategy_sharding(config: Any, pm: Any, world_size: int) -> Sharding:
    """The strategy's :class:`Sharding` for a group of ``world_size`` ranks (a full copy when it declares none)."""
    from skyrl_core.config.sections import component_section

    section = component_section(config.trainer, config.trainer.strategy, "strategies", pm)
    declare = getattr(section, "memory_sharding", None)
    return declare(world_size, config.trainer.bf16) if declare is not None else Sharding()


def estimate(config: Any, pm: Any, *, on_gpu: bool) -> list[Need]:
    """What every actor of the run holds (see the module doc)."""
    from skyrl_core.workers.engine_actor import engine_dtype

    trainer, placement, generator = config.trainer, config.trainer.placement, config.generator
    kwargs = dict(trainer.policy.model_config_kwargs)
    policy_params = count_parameters(trainer.policy.model.path, kwargs)
    groups = [("policy", trainer.policy.model.path, placement.policy_num_nodes * placement.policy_num_gpus_per_node,
               True, "lm")]
    if trainer.algorithm.use_kl_loss or trainer.algorithm.use_kl_in_reward:
        groups.append(("ref", trainer.ref.model.path or trainer.policy.model.path,
                       placement.ref_num_nodes * placement.ref_num_gpus_per_node, False, "lm"))
    if trainer.critic.model.path is not None:
        groups.append(("critic", trainer.critic.model.path,
                       placement.critic_num_nodes * placement.critic_num_gpus_per_node, True, "value"))
    needs = []
    for role, path, world, trainable, head in groups:
        params = policy_params if (path, head) == (trainer.policy.model.path, "lm") else count_parameters(
            path, kwargs, head)
        parts = strategy_sharding(config, pm, world).per_rank(params, trainable=trainable, on_gpu=on_gpu)
        needs.append(Need(f"{role} ({params / 1e9:.2f}B parameters)", world, parts))
    tp = generator.inference_engine_tensor_parallel_size
    weights = policy_params * DTYPE_BYTES[engine_dtype(config)] / tp
    needs.append(Need(f"inference engines ({engine_dtype(config)})", generator.num_inference_engines * tp,
                      {"weights": weights}))
    return needs


@attrs.frozen
class Machine:
    """The memory the run's processes can use: per CPU node (bytes available), or per GPU (bytes)."""

    where: str  # "this machine", "the Ray cluster" or "GPU"
    sizes: list[float]

    @property
    def on_gpu(self) -> bool:
        return self.where == "GPU"


def local_machine() -> Machine:
    """This machine's GPUs (total memory of each), else its available RAM."""
    import psutil
    import torch

    if torch.cuda.is_available():
        return Machine("GPU", [torch.cuda.get_device_properties(i).total_memory
                               for i in range(torch.cuda.device_count())])
    return Machine("this machine", [psutil.virtual_memory().available])


def cluster_machine() -> Machine | None:
    """The ``memory`` resource of every alive node of the Ray cluster (None when it has GPUs: their memory is not
    known to the driver)."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(resources.get("GPU", 0) for resources in nodes):
        return None
    return Machine("the Ray cluster", [resources.get("memory", 0) for resources in nodes])


def required(needs: list[Need], machine: Machine, colocated: bool) -> tuple[float, float, str]:
    """(bytes needed, bytes there, where): per GPU against the smallest GPU; without GPUs the sum against the sum
    of the nodes' memory, or the largest process against the largest node when only that does not fit."""
    if machine.on_gpu:
        need = sum(n.each for n in needs) if colocated else max(n.each for n in needs)
        return need, min(machine.sizes), "the smallest GPU"
    total, largest = sum(n.count * n.each for n in needs), max(n.each for n in needs)
    if total <= sum(machine.sizes) and largest > max(machine.sizes):
        return largest, max(machine.sizes), f"the largest node of {machine.where}"
    return total, sum(machine.sizes), machine.where


def check_memory(config: Any, pm: Any, machine: Machine | None, say: Any = print) -> None:
    """Refuse (``trainer.memory_check=error``) or warn about a run whose estimate exceeds ``machine``; warn once
    above :data:`WARN_FRACTION`. ``say`` prints a line; a model whose config cannot be read locally is skipped."""
    mode = config.trainer.memory_check
    if mode == "off" or machine is None or not machine.sizes:
        return
    try:
        needs = estimate(config, pm, on_gpu=machine.on_gpu)
    except (OSError, ValueError, KeyError) as exc:  # not a local folder nor in the HF cache, or an unknown arch
        say(f"memory check skipped: cannot read the model's config ({str(exc).splitlines()[0]})")
        return
    need, have, where = required(needs, machine, config.trainer.placement.colocate_all)
    if need <= WARN_FRACTION * have:
        return
    summary = (f"needs at least {need / GIB:.1f} GiB {'per GPU' if machine.on_gpu else 'of memory'} for weights, "
               f"gradients and optimizer state, and {where} has {have / GIB:.1f} GiB "
               f"({'; '.join(n.describe() for n in needs)})")
    if need <= have:
        say(f"warning: the run {summary}: that is over {WARN_FRACTION:.0%}, and activations come on top; the run "
            "may run out of memory")
        return
    advice = ("Use a smaller model (trainer.policy.model.path), a sharded strategy (trainer.strategy=fsdp2 or "
              "deepspeed)" + (", offload (trainer.fsdp2.cpu_offload=true)" if machine.on_gpu else "")
              + ", fewer workers or engines (trainer.placement.*, generator.num_inference_engines)"
              + (", no ref model (trainer.algorithm.use_kl_loss=false)" if any(n.label.startswith("ref") for n in needs)
                 else "") + "; or set trainer.memory_check=warn to start anyway")
    if mode == "warn":
        say(f"warning: the run {summary}; starting anyway (trainer.memory_check=warn)")
        return
    raise UserError(f"the run does not fit in memory: it {summary}. {advice}")
