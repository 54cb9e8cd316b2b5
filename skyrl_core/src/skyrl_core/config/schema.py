"""The run configuration: attrs classes with SkyRL's classic key names and defaults where they apply.

Every field carries ``metadata["help"]``; ``docs/config.md`` is generated from these classes
(``python -m skyrl_core.config.docs``). Sections of registered components (an env's, a backend's, a strategy's)
are not fields here: they live in the ``sections`` dict of their parent and are structured with the attrs class
the component registered (see :mod:`skyrl_core.config.sections`).
"""

from __future__ import annotations

from typing import Any

import attrs


def option(default: Any, help: str, **kw: Any) -> Any:
    """An attrs field with a help text; mutable defaults are copied per instance."""
    if isinstance(default, (list, dict)):
        value = default
        return attrs.field(factory=lambda: type(value)(value), metadata={"help": help}, **kw)
    return attrs.field(default=default, metadata={"help": help}, **kw)


def section(cls: type, help: str) -> Any:
    return attrs.field(factory=cls, metadata={"help": help})


def sections_field(kinds: tuple[str, ...]) -> Any:
    """The holder of component sections (``environment.gsm8k``, ``generator.vllm``, ...)."""
    return attrs.field(factory=dict, metadata={"component_kinds": kinds, "help": "component sections"})


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class DataConfig:
    train_data: list[str] = option([], "Training files (parquet or JSONL). Empty: the env's registered dataset.")
    val_data: list[str] = option([], "Validation files (parquet or JSONL). Empty: the env's registered dataset.")
    sections: dict[str, Any] = sections_field(("datasets",))


# ---------------------------------------------------------------------------------------------------------------
# trainer
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class KLControlConfig:
    type: str = option("fixed", "KL-in-reward controller: fixed or adaptive (Ziegler et al. 2019).")
    kl_target: float = option(0.1, "Target KL of the adaptive controller.")
    horizon: int = option(10000, "Horizon of the adaptive controller.")


@attrs.define(kw_only=True)
class CISPOConfig:
    cispo_eps_clip_low: float = option(0.0, "Lower bound offset of CISPO's clipped IS weight (1 - low).")
    cispo_eps_clip_high: float = option(5.0, "Upper bound offset of CISPO's clipped IS weight (1 + high).")


@attrs.define(kw_only=True)
class DynamicSamplingConfig:
    type: str | None = option(None, "null, filter (DAPO) or replace (POLARIS).")
    max_sample_batches: int = option(30, "Most batches sampled to fill one training batch (<= 0: unlimited).")
    min_replace_ratio: float = option(0.3, "replace: least fraction of good groups needed.")


@attrs.define(kw_only=True)
class AlgorithmConfig:
    preset: str | None = option(None, "The --algo preset of this run (its batch hooks run every step).")
    advantage_estimator: str = option("grpo", "A registered advantage estimator: grpo, gae, rloo, reinforce++, ...")
    policy_loss_type: str = option("regular", "A registered policy loss: regular, dual_clip, gspo, cispo, ...")
    loss_reduction: str = option("token_mean", "token_mean, sequence_mean or seq_mean_token_sum_norm.")
    grpo_norm_by_std: bool = option(True, "GRPO: divide by the group's std (false = Dr. GRPO).")
    zero_variance_filter: bool = option(False, "Mask out prompt groups whose rewards are all equal.")
    advantage_batch_normalize: bool = option(False, "Whiten advantages over the whole batch.")
    use_kl_loss: bool = option(True, "Add kl_loss_coef * KL(policy || ref) to the policy loss.")
    kl_loss_coef: float = option(0.001, "Coefficient of the KL loss.")
    use_kl_in_reward: bool = option(False, "Subtract kl_loss_coef * KL from token rewards instead.")
    kl_estimator_type: str = option("k3", "KL estimator: k1, k2, k3 or abs (Schulman 2020).")
    kl_ctrl: KLControlConfig = section(KLControlConfig, "KL-in-reward controller.")
    use_entropy_loss: bool = option(False, "Subtract entropy_loss_coef * entropy from the loss.")
    entropy_loss_coef: float = option(0.01, "Coefficient of the entropy bonus.")
    eps_clip_low: float = option(0.2, "PPO ratio clip below 1.")
    eps_clip_high: float = option(0.2, "PPO ratio clip above 1 (clip-higher when larger than eps_clip_low).")
    clip_ratio_c: float = option(3.0, "Dual-clip constant.")
    value_clip: float = option(0.2, "Critic value clipping.")
    gamma: float = option(1.0, "Discount (gae, reinforce++).")
    lambd: float = option(1.0, "GAE lambda.")
    cispo: CISPOConfig = section(CISPOConfig, "CISPO bounds.")
    dynamic_sampling: DynamicSamplingConfig = section(DynamicSamplingConfig, "Dynamic sampling (DAPO).")
    max_seq_len: int | None = option(None, "Normaliser of seq_mean_token_sum_norm (default: input + generate length).")
    sections: dict[str, Any] = sections_field(("algorithms", "advantage_estimators", "policy_losses"))


@attrs.define(kw_only=True)
class PlacementConfig:
    colocate_all: bool = option(True, "Trainer and inference engines share the same devices (time-shared).")
    colocate_policy_ref: bool = option(True, "Policy and ref share devices when not colocate_all.")
    policy_num_nodes: int = option(1, "Nodes of the policy worker group.")
    policy_num_gpus_per_node: int = option(1, "Policy workers per node (one process each; a CPU share without GPUs).")
    ref_num_nodes: int = option(1, "Nodes of the ref worker group.")
    ref_num_gpus_per_node: int = option(1, "Ref workers per node.")
    critic_num_nodes: int = option(1, "Nodes of the critic worker group.")
    critic_num_gpus_per_node: int = option(1, "Critic workers per node.")


@attrs.define(kw_only=True)
class OptimizerConfig:
    lr: float = option(1e-6, "AdamW learning rate.")
    adam_betas: list[float] = option([0.9, 0.999], "AdamW betas.")
    weight_decay: float = option(1e-2, "AdamW weight decay.")
    max_grad_norm: float = option(1.0, "Gradient clipping norm (<= 0: off).")
    offload_after_step: bool = option(True, "Offload optimizer state after each step when colocated (GPU).")
    num_warmup_steps: int = option(0, "Linear warm-up steps of the schedule.")
    scheduler: str = option("constant_with_warmup", "LR schedule: constant_with_warmup or constant.")


@attrs.define(kw_only=True)
class ModelConfig:
    path: str | None = option(None, "HF model id or local folder.")


@attrs.define(kw_only=True)
class PolicyConfig:
    model: ModelConfig = section(lambda: ModelConfig(path="Qwen/Qwen2.5-1.5B-Instruct"), "Policy model.")
    optimizer_config: OptimizerConfig = section(OptimizerConfig, "Policy optimizer.")
    sequence_parallel_size: int = option(1, "Sequence-parallel degree (strategies that support it).")
    use_torch_compile: bool = option(False, "torch.compile the policy model.")
    model_config_kwargs: dict[str, Any] = option({}, "Extra kwargs for the HF model config.")


@attrs.define(kw_only=True)
class RefConfig:
    model: ModelConfig = section(ModelConfig, "Reference model (default: the policy's path).")
    sequence_parallel_size: int = option(1, "Sequence-parallel degree.")


@attrs.define(kw_only=True)
class CriticConfig:
    model: ModelConfig = section(ModelConfig, "Critic model; set it to train a critic (needed by gae).")
    optimizer_config: OptimizerConfig = section(lambda: OptimizerConfig(lr=5e-6), "Critic optimizer.")
    sequence_parallel_size: int = option(1, "Sequence-parallel degree.")


@attrs.define(kw_only=True)
class TrainerConfig:
    algorithm: AlgorithmConfig = section(AlgorithmConfig, "The RL algorithm.")
    placement: PlacementConfig = section(PlacementConfig, "Where workers run.")
    policy: PolicyConfig = section(PolicyConfig, "The trained policy.")
    ref: RefConfig = section(RefConfig, "The reference policy (KL).")
    critic: CriticConfig = section(CriticConfig, "The critic (gae).")
    strategy: str = option("auto", "Training strategy: auto, ddp, fsdp2, deepspeed, ... (auto: best available).")
    gradient_checkpointing: bool = option(True, "Recompute activations in backward.")
    gradient_checkpointing_use_reentrant: bool = option(False, "Use reentrant checkpointing.")
    seed: int = option(42, "Seed of data order, sampling and initialisation.")
    resume_mode: str = option("latest", "none, latest or from_path.")
    resume_path: str | None = option(None, "Checkpoint folder when resume_mode=from_path.")
    ckpt_path: str | None = option(None, "Checkpoint folder (default: <output_dir>/ckpts).")
    max_ckpts_to_keep: int = option(-1, "Keep at most this many checkpoints (-1: all).")
    ckpt_interval: int = option(10, "Checkpoint every N steps (<= 0: only at the end).")
    hf_save_interval: int = option(-1, "Export an HF model every N steps (-1: never).")
    export_path: str | None = option(None, "Folder of HF exports (default: <output_dir>/exports).")
    bf16: bool = option(True, "Train in bf16 mixed precision (false: fp32).")
    epochs: int = option(1, "Passes over the training data.")
    max_training_steps: int | None = option(None, "Stop after this many steps (null: run all epochs).")
    update_epochs_per_batch: int = option(1, "Passes of optimisation over each generated batch.")
    train_batch_size: int = option(1024, "Prompts per step.")
    policy_mini_batch_size: int = option(256, "Prompts per policy optimizer step.")
    critic_mini_batch_size: int = option(256, "Prompts per critic optimizer step.")
    micro_train_batch_size_per_gpu: int = option(1, "Sequences per forward/backward (gradient accumulation).")
    micro_forward_batch_size_per_gpu: int = option(1, "Sequences per forward-only pass.")
    update_ref_every_epoch: bool = option(False, "Copy the policy into the ref model at each epoch end.")
    eval_batch_size: int = option(1024, "Prompts per evaluation batch.")
    eval_before_train: bool = option(True, "Evaluate before the first step.")
    eval_interval: int = option(5, "Evaluate every N steps (<= 0: never).")
    max_prompt_length: int = option(512, "Prompts longer than this (tokens, after the chat template) are dropped.")
    flash_attn: bool = option(True, "Use flash attention when available.")
    project_name: str = option("skyrl", "Project name (loggers, output folder).")
    run_name: str = option("test_run", "Run name (loggers, output folder).")
    logger: str | list[str] = option("console", "Metric sinks: a name or a list (console, jsonl, wandb, tensorboard).")
    output_dir: str | None = option(None, "Run folder (default: ./skyrl_runs/<project_name>/<run_name>).")
    dump_data_batch: bool = option(False, "Save every training batch to the run folder.")
    num_logger_samples: int = option(4, "Samples written to samples/step_<N>.jsonl per step.")
    write_plots: bool = option(True, "Write plots/metrics.png (reward, eval reward, ... against steps) at the end.")
    sections: dict[str, Any] = sections_field(("strategies", "loggers"))


# ---------------------------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class SamplingConfig:
    max_generate_length: int = option(1024, "Most tokens generated per turn.")
    temperature: float = option(1.0, "Sampling temperature (0: greedy).")
    top_p: float = option(1.0, "Nucleus sampling (1.0: off).")
    top_k: int = option(-1, "Top-k sampling (-1: off).")
    min_p: float = option(0.0, "Min-p sampling (0: off).")
    repetition_penalty: float = option(1.0, "Repetition penalty (1.0: off).")
    logprobs: int | None = option(1, "Return sampled-token logprobs (needed for rollout/logprob_diff_mean).")
    stop: list[str] | None = option(None, "Stop strings.")


@attrs.define(kw_only=True)
class GeneratorConfig:
    name: str = option("default", "Rollout generator (the agent loop).")
    backend: str = option("auto", "Inference backend: auto, hf, vllm, sglang, ... (auto: best available).")
    model_dtype: str = option("bfloat16", "Engine weights dtype (fp32 when trainer.bf16=false).")
    run_engines_locally: bool = option(True, "Start engines as Ray actors.")
    num_inference_engines: int = option(1, "Inference engines; requests are spread across them.")
    inference_engine_tensor_parallel_size: int = option(1, "Tensor parallel size of each engine.")
    inference_engine_pipeline_parallel_size: int = option(1, "Pipeline parallel size of each engine.")
    inference_engine_data_parallel_size: int = option(1, "Data parallel size of each engine.")
    weight_sync_backend: str = option("auto", "Weight transport: auto, gloo, nccl, ray, ... (auto: best).")
    n_samples_per_prompt: int = option(5, "Samples per prompt (the GRPO group size).")
    max_input_length: int | None = option(None, "Most input tokens of a turn (default: trainer.max_prompt_length).")
    gpu_memory_utilization: float = option(0.8, "Fraction of GPU memory an engine may use.")
    max_num_seqs: int = option(1024, "Most concurrent sequences per engine.")
    max_num_batched_tokens: int = option(8192, "Most tokens per engine batch.")
    enable_prefix_caching: bool = option(True, "Prefix caching (backends that support it).")
    enforce_eager: bool = option(True, "Disable CUDA graphs (vllm).")
    max_turns: int = option(1, "Most turns per trajectory.")
    use_conversation_multi_turn: bool = option(True, "Observations as new chat messages (else inside the turn).")
    append_eos_token_after_stop_str_in_multi_turn: bool = option(True, "Close a turn ended by a stop string with EOS.")
    zero_reward_on_non_stop: bool = option(False, "Reward 0 for responses that did not stop by themselves.")
    apply_overlong_filtering: bool = option(False, "Loss mask 0 for responses that hit the length limit.")
    batched: bool = option(False, "Single-turn batched generation (all prompts in one engine call).")
    sampling_params: SamplingConfig = section(SamplingConfig, "Sampling during training.")
    eval_sampling_params: SamplingConfig = section(lambda: SamplingConfig(temperature=0.0), "Sampling in eval.")
    eval_n_samples_per_prompt: int = option(1, "Samples per prompt in eval.")
    engine_init_kwargs: dict[str, Any] = option({}, "Extra keyword arguments for the engine constructor.")
    sections: dict[str, Any] = sections_field(("inference_backends", "generators", "weight_sync_backends"))


# ---------------------------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class EnvironmentConfig:
    env_class: str | None = option(None, "Env of rows without an env_class column.")
    max_env_workers: int = option(32, "Threads running env calls (0: inline).")
    step_timeout_s: float = option(60.0, "Time limit of one env call; past it the trajectory fails (reward 0).")
    sections: dict[str, Any] = sections_field(("environments",))


@attrs.define(kw_only=True)
class SkyRLConfig:
    """The whole run configuration."""

    data: DataConfig = section(DataConfig, "Datasets.")
    trainer: TrainerConfig = section(TrainerConfig, "Training.")
    generator: GeneratorConfig = section(GeneratorConfig, "Rollout generation.")
    environment: EnvironmentConfig = section(EnvironmentConfig, "Environments.")


def _resolve_types(cls: type) -> None:
    """Turn the string annotations of every config class into types (``from __future__ import annotations``)."""
    attrs.resolve_types(cls, globals())
    for field in attrs.fields(cls):
        if isinstance(field.type, type) and attrs.has(field.type):
            _resolve_types(field.type)


_resolve_types(SkyRLConfig)
