"""The run configuration: attrs classes with SkyRL's classic key names and defaults where they apply.

Every field carries ``metadata["help"]``; ``docs/config.md`` is generated from these classes
(``python -m skyrl_core.config.docs``). Sections of registered components (an env's, a backend's, a strategy's)
are not fields here: they live in the ``sections`` dict of their parent and are structured with the attrs class
the component registered (see :mod:`skyrl_core.config.sections`).
"""

from __future__ import annotations

from typing import Any

import attrs

from skyrl_core.config.checks import (
    Check,
    above,
    at_least,
    between,
    minus_one_or_at_least,
    one_of,
    probabilities,
)


def option(
    default: Any,
    help: str,
    *,
    check: Check | None = None,
    read_in: str | None = None,
    unsupported: bool = False,
    **kw: Any,
) -> Any:
    """An attrs field with a help text; mutable defaults are copied per instance.

    Every field says what happens to it (a test holds the whole schema to it): ``read_in`` names the module (path
    under ``skyrl_core/``) that reads it; ``unsupported=True`` refuses any value but the default with "not
    supported yet". ``check`` validates the value (:mod:`skyrl_core.config.checks`).
    """
    metadata: dict[str, Any] = {"help": help}
    for key, value in (("read_in", read_in), ("unsupported", unsupported or None)):
        if value is not None:
            metadata[key] = value
    if isinstance(default, (list, dict)):
        value = default
        return attrs.field(factory=lambda: type(value)(value), metadata=metadata, validator=check, **kw)
    return attrs.field(default=default, metadata=metadata, validator=check, **kw)


def section(cls: type, help: str) -> Any:
    """A nested config class."""
    return attrs.field(factory=cls, metadata={"help": help})


def sections_field() -> Any:
    """The holder of component sections (``environment.gsm8k``, ``generator.weight_sync.nccl``, ...), keyed by kind
    then name; where each kind's sections live is declared in :data:`skyrl_core.hookspecs.KIND_RECORDS`."""
    return attrs.field(factory=dict, metadata={"component_sections": True, "help": "component sections"})


def deepspeed_config_option() -> Any:
    """SkyRL's per-role ``trainer.<role>.deepspeed_config``."""
    return option({}, "DeepSpeed's own keys for this role's engine (SkyRL's key), merged over "
                      "trainer.deepspeed.deepspeed_config; only with trainer.strategy=deepspeed.",
                  read_in="workers/train_worker.py")




# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class DataConfig:
    train_data: list[str] = option([], "Training files (parquet or JSONL). Empty: the env's registered dataset.",
                                   read_in="trainer/launch.py")
    val_data: list[str] = option([], "Validation files (parquet or JSONL). Empty: the env's registered dataset.",
                                 read_in="trainer/launch.py")
    sections: dict[str, Any] = sections_field()


# ---------------------------------------------------------------------------------------------------------------
# trainer
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class KLControlConfig:
    type: str = option("fixed", "KL-in-reward controller: fixed or adaptive (Ziegler et al. 2019).",
                       read_in="algorithms/kl_reward.py", check=one_of("fixed", "adaptive"))
    kl_target: float = option(0.1, "Target KL of the adaptive controller.",
                              read_in="algorithms/kl_reward.py", check=above(0))
    horizon: int = option(10000, "Horizon of the adaptive controller.",
                          read_in="algorithms/kl_reward.py", check=at_least(1))


@attrs.define(kw_only=True)
class CISPOConfig:
    cispo_eps_clip_low: float = option(0.0, "Lower bound offset of CISPO's clipped IS weight (1 - low).",
                                       read_in="algorithms/losses.py", check=at_least(0))
    cispo_eps_clip_high: float = option(5.0, "Upper bound offset of CISPO's clipped IS weight (1 + high).",
                                        read_in="algorithms/losses.py", check=at_least(0))


@attrs.define(kw_only=True)
class SAPOConfig:
    tau_pos: float = option(1.0, "SAPO gate temperature for tokens with a positive advantage.",
                            read_in="algorithms/losses.py")
    tau_neg: float = option(1.05, "SAPO gate temperature for tokens with a zero or negative advantage.",
                            read_in="algorithms/losses.py")


@attrs.define(kw_only=True)
class ClipCovConfig:
    clip_ratio: float = option(0.0002, "clip_cov: fraction of valid tokens whose gradient is detached.",
                               read_in="algorithms/covariance_losses.py")
    clip_cov_lb: float = option(1.0, "clip_cov: candidates have covariance above this bound.",
                                read_in="algorithms/covariance_losses.py")
    clip_cov_ub: float = option(5.0, "clip_cov: candidates have covariance below this bound.",
                                read_in="algorithms/covariance_losses.py")


@attrs.define(kw_only=True)
class KLCovConfig:
    kl_cov_frac: float = option(0.2, "kl_cov: fraction of valid tokens (largest covariance) given the KL penalty.",
                                read_in="algorithms/covariance_losses.py")
    ppo_kl_coef: float = option(1.0, "kl_cov: coefficient of |logp - logp_old| on the selected tokens.",
                                read_in="algorithms/covariance_losses.py")


@attrs.define(kw_only=True)
class OffPolicyCorrectionConfig:
    tis_ratio_type: str | None = option(None, "Truncated IS weight vs the engine's log-probs: null, token or sequence.",
                                        read_in="algorithms/off_policy.py")
    token_tis_ratio_clip_high: float = option(2.0, "Cap of the token IS weight (tis_ratio_type=token).",
                                              read_in="algorithms/off_policy.py")
    sequence_tis_ratio_clip_high: float = option(5.0, "Cap of the sequence IS weight (tis_ratio_type=sequence).",
                                                 read_in="algorithms/off_policy.py")
    sequence_mask_metric: str | None = option(None, "Mask whole rows by their IS ratio: null, geometric or product.",
                                              read_in="algorithms/off_policy.py")
    geo_mask_low: float = option(0.99, "geometric: mask rows whose geometric-mean ratio is below this.",
                                 read_in="algorithms/off_policy.py")
    geo_mask_high: float = option(1.01, "geometric: mask rows whose geometric-mean ratio is above this.",
                                  read_in="algorithms/off_policy.py")
    product_mask_low: float = option(0.5, "product: mask rows whose product of ratios is below this.",
                                     read_in="algorithms/off_policy.py")
    product_mask_high: float = option(2.0, "product: mask rows whose product of ratios is above this.",
                                      read_in="algorithms/off_policy.py")
    outlier_token_is_threshold_low: float | None = option(None, "Mask rows having any token ratio below this.",
                                                          read_in="algorithms/off_policy.py")
    outlier_token_is_threshold_high: float | None = option(None, "Mask rows having any token ratio above this.",
                                                           read_in="algorithms/off_policy.py")
    token_mask_is_threshold_low: float | None = option(None, "IcePop: mask tokens whose ratio is below this.",
                                                       read_in="algorithms/off_policy.py")
    token_mask_is_threshold_high: float | None = option(None, "IcePop: mask tokens whose ratio is above this.",
                                                        read_in="algorithms/off_policy.py")


@attrs.define(kw_only=True)
class DynamicSamplingConfig:
    type: str | None = option(None, "null, filter or replace; carried out by the --algo preset's batch hooks.",
                              read_in="config/validation.py", check=one_of(None, "filter", "replace"))
    max_sample_batches: int = option(30, "Most batches sampled to fill one training batch (<= 0: unlimited).",
                                     read_in="trainer/sampling.py")
    min_replace_ratio: float = option(0.3, "replace: least fraction of good groups needed.",
                                      read_in="config/validation.py", check=between(0, 1))


@attrs.define(kw_only=True)
class AlgorithmConfig:
    preset: str | None = option(None, "The --algo preset of this run (its batch hooks run every step).",
                                read_in="trainer/loop.py")
    advantage_estimator: str = option("grpo", "An estimator: grpo, gae, rloo, reinforce++, reinforce++_baseline, ...",
                                      read_in="trainer/loop.py")
    policy_loss_type: str = option("regular", "A policy loss: regular, dual_clip, gspo, cispo, sapo, clip_cov, ...",
                                   read_in="workers/train_worker.py")
    loss_reduction: str = option(
        "token_mean", "token_mean, sequence_mean or seq_mean_token_sum_norm.",
        read_in="workers/train_worker.py", check=one_of("token_mean", "sequence_mean", "seq_mean_token_sum_norm"),
    )
    grpo_norm_by_std: bool = option(True, "GRPO: divide by the group's std (false = Dr. GRPO).",
                                    read_in="algorithms/advantages.py")
    zero_variance_filter: bool = option(False, "Mask out prompt groups whose rewards are all equal.",
                                        read_in="trainer/loop.py")
    advantage_batch_normalize: bool = option(False, "Whiten advantages over the whole batch.",
                                             read_in="trainer/loop.py")
    use_kl_loss: bool = option(True, "Add kl_loss_coef * KL(policy || ref) to the policy loss.",
                               read_in="workers/train_worker.py")
    kl_loss_coef: float = option(0.001, "Coefficient of the KL loss.",
                                 read_in="workers/train_worker.py", check=at_least(0))
    use_kl_in_reward: bool = option(False, "Subtract kl_ctrl's coefficient * KL from token rewards (needs "
                                    "use_kl_loss=false).", read_in="trainer/loop.py")
    kl_estimator_type: str = option("k3", "KL estimator: k1, k2, k3 or abs (Schulman 2020).",
                                    read_in="workers/train_worker.py", check=one_of("k1", "k2", "k3", "abs"))
    kl_ctrl: KLControlConfig = section(KLControlConfig, "KL-in-reward controller.")
    use_entropy_loss: bool = option(False, "Subtract entropy_loss_coef * entropy from the loss.",
                                    read_in="workers/train_worker.py")
    entropy_loss_coef: float = option(0.01, "Coefficient of the entropy bonus.",
                                      read_in="workers/train_worker.py", check=at_least(0))
    eps_clip_low: float = option(0.2, "PPO ratio clip below 1.", read_in="algorithms/losses.py", check=between(0, 1))
    eps_clip_high: float = option(0.2, "PPO ratio clip above 1 (clip-higher when larger than eps_clip_low).",
                                  read_in="algorithms/losses.py", check=at_least(0))
    clip_ratio_c: float = option(3.0, "Dual-clip constant.", read_in="algorithms/losses.py", check=above(1))
    value_clip: float = option(0.2, "Critic value clipping.", read_in="workers/critic.py", check=at_least(0))
    gamma: float = option(1.0, "Discount (gae, reinforce++).", read_in="algorithms/advantages.py", check=between(0, 1))
    lambd: float = option(1.0, "GAE lambda.", read_in="algorithms/advantages.py", check=between(0, 1))
    cispo: CISPOConfig = section(CISPOConfig, "CISPO bounds.")
    sapo: SAPOConfig = section(SAPOConfig, "SAPO gate temperatures (policy_loss_type=sapo).")
    clip_cov: ClipCovConfig = section(ClipCovConfig, "Clip-Cov token selection (policy_loss_type=clip_cov).")
    kl_cov: KLCovConfig = section(KLCovConfig, "KL-Cov token selection (policy_loss_type=kl_cov).")
    off_policy_correction: OffPolicyCorrectionConfig = section(
        OffPolicyCorrectionConfig, "Corrections for the gap between the engine's and the trainer's log-probs."
    )
    dynamic_sampling: DynamicSamplingConfig = section(DynamicSamplingConfig, "Dynamic sampling (presets that do it).")
    max_seq_len: int | None = option(None, "Normaliser of seq_mean_token_sum_norm (default: input + generate length).",
                                     read_in="trainer/loop.py", check=at_least(1))
    sections: dict[str, Any] = sections_field()


@attrs.define(kw_only=True)
class PlacementConfig:
    colocate_all: bool = option(True, "Trainer and inference engines share the same devices (time-shared).",
                                read_in="trainer/actors.py")
    colocate_policy_ref: bool = option(True, "Policy and ref share devices when not colocate_all.", unsupported=True)
    policy_num_nodes: int = option(1, "Nodes of the policy worker group.",
                                   read_in="workers/placement_check.py", check=at_least(1))
    policy_num_gpus_per_node: int = option(1, "Policy workers per node (one process each; a CPU share without GPUs).",
                                           read_in="workers/placement_check.py", check=at_least(1))
    ref_num_nodes: int = option(1, "Nodes of the ref worker group.", read_in="workers/placement_check.py",
                                check=at_least(1))
    ref_num_gpus_per_node: int = option(1, "Ref workers per node.", read_in="workers/placement_check.py",
                                        check=at_least(1))
    critic_num_nodes: int = option(1, "Nodes of the critic worker group.",
                                   read_in="workers/placement_check.py", check=at_least(1))
    critic_num_gpus_per_node: int = option(1, "Critic workers per node.",
                                           read_in="workers/placement_check.py", check=at_least(1))


@attrs.define(kw_only=True)
class OptimizerConfig:
    lr: float = option(1e-6, "AdamW learning rate.", read_in="strategy/common.py", check=at_least(0))
    adam_betas: list[float] = option([0.9, 0.999], "AdamW betas.", read_in="strategy/common.py", check=probabilities(2))
    weight_decay: float = option(1e-2, "AdamW weight decay.", read_in="strategy/common.py", check=at_least(0))
    max_grad_norm: float = option(1.0, "Gradient clipping norm (<= 0: off).", read_in="workers/train_worker.py")
    offload_after_step: bool = option(True, "Offload optimizer state after each step when colocated (GPU).",
                                      read_in="trainer/loop.py")
    num_warmup_steps: int = option(0, "Linear warm-up steps of the schedule.",
                                   read_in="strategy/common.py", check=at_least(0))
    scheduler: str = option("constant_with_warmup", "LR schedule: constant_with_warmup or constant.",
                            read_in="strategy/common.py", check=one_of("constant_with_warmup", "constant"))


@attrs.define(kw_only=True)
class ModelConfig:
    path: str | None = option(None, "HF model id or local folder.", read_in="workers/train_worker.py")


@attrs.define(kw_only=True)
class PolicyConfig:
    model: ModelConfig = section(lambda: ModelConfig(path="Qwen/Qwen2.5-1.5B-Instruct"), "Policy model.")
    optimizer_config: OptimizerConfig = section(OptimizerConfig, "Policy optimizer.")
    sequence_parallel_size: int = option(1, "Sequence-parallel degree (strategies that support it).",
                                         unsupported=True, check=at_least(1))
    use_torch_compile: bool = option(False, "torch.compile the policy model.", unsupported=True)
    model_config_kwargs: dict[str, Any] = option({}, "Extra kwargs for the HF model config.",
                                                 read_in="strategy/common.py")
    deepspeed_config: dict[str, Any] = deepspeed_config_option()


@attrs.define(kw_only=True)
class RefConfig:
    model: ModelConfig = section(ModelConfig, "Reference model (default: the policy's path).")
    sequence_parallel_size: int = option(1, "Sequence-parallel degree.", unsupported=True, check=at_least(1))
    deepspeed_config: dict[str, Any] = deepspeed_config_option()


@attrs.define(kw_only=True)
class CriticConfig:
    model: ModelConfig = section(ModelConfig, "Critic model; set it to train a critic (needed by gae).")
    optimizer_config: OptimizerConfig = section(lambda: OptimizerConfig(lr=5e-6), "Critic optimizer.")
    sequence_parallel_size: int = option(1, "Sequence-parallel degree.", unsupported=True, check=at_least(1))
    deepspeed_config: dict[str, Any] = deepspeed_config_option()


@attrs.define(kw_only=True)
class TrainerConfig:
    algorithm: AlgorithmConfig = section(AlgorithmConfig, "The RL algorithm.")
    placement: PlacementConfig = section(PlacementConfig, "Where workers run.")
    policy: PolicyConfig = section(PolicyConfig, "The trained policy.")
    ref: RefConfig = section(RefConfig, "The reference policy (KL).")
    critic: CriticConfig = section(CriticConfig, "The critic (gae).")
    strategy: str = option("auto", "Training strategy: auto, ddp, fsdp2, deepspeed, ... (auto: best available).",
                           read_in="workers/train_worker.py")
    gradient_checkpointing: bool = option(True, "Recompute activations in backward.", read_in="strategy/common.py")
    gradient_checkpointing_use_reentrant: bool = option(False, "Use reentrant checkpointing.",
                                                        read_in="strategy/common.py")
    seed: int = option(42, "Seed of data order, sampling and initialisation.", read_in="trainer/launch.py")
    resume_mode: str = option("latest", "none, latest or from_path.",
                              read_in="trainer/checkpoint.py", check=one_of("none", "latest", "from_path"))
    resume_path: str | None = option(None, "Checkpoint folder when resume_mode=from_path.",
                                     read_in="trainer/checkpoint.py")
    resume_load_optimizer: bool = option(True, "Load optimizer and schedule state on resume (false: weights only).",
                                         read_in="trainer/loop.py")
    ckpt_path: str | None = option(None, "Checkpoint folder (default: <output_dir>/ckpts).",
                                   read_in="trainer/checkpoint.py")
    max_ckpts_to_keep: int = option(-1, "Keep at most this many checkpoints (-1: all).",
                                    read_in="trainer/checkpoint.py", check=minus_one_or_at_least(1))
    ckpt_interval: int = option(10, "Checkpoint every N steps (<= 0: only at the end).", read_in="trainer/loop.py")
    ckpt_on_signal: bool = option(True, "On SIGINT/SIGTERM, finish the step and write a checkpoint before exiting.",
                                  read_in="trainer/loop.py")
    hf_save_interval: int = option(-1, "Export an HF model every N steps (-1: never).", read_in="trainer/loop.py")
    export_path: str | None = option(None, "Folder of HF exports (default: <output_dir>/exports).",
                                     read_in="trainer/loop.py")
    bf16: bool = option(True, "Train in bf16 mixed precision (false: fp32).", read_in="strategy/ddp.py")
    epochs: int = option(1, "Passes over the training data.", read_in="trainer/launch.py", check=at_least(1))
    max_training_steps: int | None = option(None, "Stop after this many steps (null: run all epochs).",
                                            read_in="trainer/loop.py", check=at_least(1))
    update_epochs_per_batch: int = option(1, "Passes of optimisation over each generated batch.",
                                          read_in="trainer/loop.py", check=at_least(1))
    train_batch_size: int = option(1024, "Prompts per step.", read_in="trainer/launch.py", check=at_least(1))
    policy_mini_batch_size: int = option(256, "Prompts per policy optimizer step.",
                                         read_in="trainer/loop.py", check=at_least(1))
    critic_mini_batch_size: int = option(256, "Prompts per critic optimizer step.",
                                         read_in="trainer/loop.py", check=at_least(1))
    micro_train_batch_size_per_gpu: int = option(1, "Sequences per forward/backward (gradient accumulation).",
                                                 read_in="workers/train_worker.py", check=at_least(1))
    micro_forward_batch_size_per_gpu: int = option(1, "Sequences per forward-only pass.",
                                                   read_in="workers/train_worker.py", check=at_least(1))
    shared_prompt_forward: bool = option(
        True, "Rows of a micro-batch with the same prompt run as one packed sequence (the prompt computed once) when "
        "that costs fewer FLOPs; needs sdpa or eager attention and no sliding-window layers (else one sequence "
        "per row).",
        read_in="workers/train_worker.py")
    update_ref_every_epoch: bool = option(False, "Copy the policy into the ref model at each epoch end.",
                                          unsupported=True)
    eval_batch_size: int = option(1024, "Prompts per evaluation batch.", read_in="trainer/evaluation.py",
                                  check=at_least(1))
    eval_before_train: bool = option(True, "Evaluate before the first step.", read_in="trainer/loop.py")
    eval_interval: int = option(5, "Evaluate every N steps (<= 0: never).", read_in="trainer/loop.py")
    max_prompt_length: int = option(512, "Prompts longer than this (tokens, after the chat template) are dropped.",
                                    read_in="trainer/launch.py", check=at_least(1))
    flash_attn: bool = option(True, "Use flash attention when available.", unsupported=True)
    project_name: str = option("skyrl", "Project name (loggers, output folder).", read_in="trainer/launch.py")
    run_name: str = option("test_run", "Run name (loggers, output folder).", read_in="trainer/launch.py")
    logger: str | list[str] = option("console", "Metric sinks: a name or a list (console, jsonl, wandb, tensorboard).",
                                     read_in="trainer/launch.py")
    output_dir: str | None = option(None, "Run folder (default: ./skyrl_runs/<project_name>/<run_name>).",
                                    read_in="trainer/launch.py")
    dump_data_batch: bool = option(False, "Save every training batch to the run folder.", unsupported=True)
    num_logger_samples: int = option(4, "Samples written to samples/step_<N>.jsonl per step.",
                                     read_in="trainer/loop.py", check=at_least(0))
    memory_check: str = option("error", "Memory estimate before start: error (refuse a run that cannot fit), warn, or "
                               "off.", read_in="trainer/memory_fit.py", check=one_of("error", "warn", "off"))
    write_plots: bool = option(True, "Write plots/metrics.png (reward, eval reward, ... against steps) at the end.",
                               read_in="trainer/launch.py")
    sections: dict[str, Any] = sections_field()


# ---------------------------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class SamplingConfig:
    max_generate_length: int = option(1024, "Most tokens generated per turn.",
                                      read_in="generator/types.py", check=at_least(1))
    temperature: float = option(1.0, "Sampling temperature (0: greedy).",
                                read_in="generator/types.py", check=at_least(0))
    top_p: float = option(1.0, "Nucleus sampling (1.0: off).",
                          read_in="generator/types.py", check=between(0, 1, low_open=True))
    top_k: int = option(-1, "Top-k sampling (-1: off).", read_in="generator/types.py", check=minus_one_or_at_least(1))
    min_p: float = option(0.0, "Min-p sampling (0: off).", read_in="generator/types.py", check=between(0, 1))
    repetition_penalty: float = option(1.0, "Repetition penalty (1.0: off).",
                                       read_in="generator/types.py", check=above(0))
    logprobs: int | None = option(1, "Return sampled-token logprobs (needed for rollout/logprob_diff_mean).",
                                  read_in="generator/agent_loop.py", check=at_least(0))
    stop: list[str] | None = option(None, "Stop strings.", read_in="generator/types.py")


@attrs.define(kw_only=True)
class GeneratorConfig:
    name: str = option("default", "Rollout generator (the agent loop).", read_in="trainer/loop.py")
    backend: str = option("auto", "Inference backend: auto, hf, vllm, sglang, ... (auto: best available).",
                          read_in="workers/engine_actor.py")
    model_dtype: str = option("bfloat16", "Engine weights dtype (fp32 when trainer.bf16=false).",
                              read_in="workers/engine_actor.py", check=one_of("bfloat16", "float16", "float32"))
    run_engines_locally: bool = option(True, "Start engines as Ray actors.", unsupported=True)
    num_inference_engines: int = option(1, "Inference engines; requests are spread across them.",
                                        read_in="trainer/actors.py", check=at_least(1))
    inference_engine_tensor_parallel_size: int = option(1, "Tensor parallel size of each engine.",
                                                        read_in="workers/groups.py", check=at_least(1))
    inference_engine_pipeline_parallel_size: int = option(1, "Pipeline parallel size of each engine.",
                                                          unsupported=True, check=at_least(1))
    inference_engine_data_parallel_size: int = option(1, "Data parallel size of each engine.",
                                                      unsupported=True, check=at_least(1))
    weight_sync_backend: str = option("auto", "Weight transport: auto, gloo, nccl, ray, ... (auto: best).",
                                      read_in="trainer/weight_sync.py")
    n_samples_per_prompt: int = option(5, "Samples per prompt (the GRPO group size).",
                                       read_in="trainer/loop.py", check=at_least(1))
    max_input_length: int | None = option(None, "Most input tokens of a turn (default: trainer.max_prompt_length).",
                                          read_in="generator/agent_loop.py", check=at_least(1))
    gpu_memory_utilization: float = option(0.8, "Fraction of GPU memory an engine may use.",
                                           read_in="workers/engine_actor.py", check=between(0, 1, low_open=True))
    max_num_seqs: int = option(1024, "Most concurrent sequences per engine.",
                               read_in="workers/engine_actor.py", check=at_least(1))
    max_num_batched_tokens: int = option(8192, "Most tokens per engine batch.",
                                         read_in="workers/engine_actor.py", check=at_least(1))
    enable_prefix_caching: bool = option(True, "Prefix caching (backends that support it).",
                                         read_in="workers/engine_actor.py")
    enforce_eager: bool = option(True, "Disable CUDA graphs (vllm).", read_in="workers/engine_actor.py")
    max_turns: int = option(1, "Most turns per trajectory.", read_in="generator/agent_loop.py", check=at_least(1))
    use_conversation_multi_turn: bool = option(True, "Observations as new chat messages (else inside the turn).",
                                               read_in="generator/agent_loop.py")
    append_eos_token_after_stop_str_in_multi_turn: bool = option(True, "Close a turn ended by a stop string with EOS.",
                                                                 read_in="generator/agent_loop.py")
    zero_reward_on_non_stop: bool = option(False, "Reward 0 for responses that did not stop by themselves.",
                                           read_in="generator/agent_loop.py")
    apply_overlong_filtering: bool = option(False, "Loss mask 0 for responses that hit the length limit.",
                                            read_in="generator/agent_loop.py")
    batched: bool = option(False, "Single-turn batched generation (all prompts in one engine call).", unsupported=True)
    sampling_params: SamplingConfig = section(SamplingConfig, "Sampling during training.")
    eval_sampling_params: SamplingConfig = section(lambda: SamplingConfig(temperature=0.0), "Sampling in eval.")
    eval_n_samples_per_prompt: int = option(1, "Samples per prompt in eval.",
                                            read_in="trainer/evaluation.py", check=at_least(1))
    engine_init_kwargs: dict[str, Any] = option({}, "Extra keyword arguments for the engine constructor.",
                                                read_in="workers/engine_actor.py")
    sections: dict[str, Any] = sections_field()


# ---------------------------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class EnvironmentConfig:
    env_class: str | None = option(None, "Env of rows without an env_class column.", read_in="trainer/launch.py")
    max_env_workers: int = option(32, "Threads running env calls (0: inline).",
                                  read_in="generator/agent_loop.py", check=at_least(0))
    step_timeout_s: float = option(60.0, "Time limit of one env call; past it the trajectory fails (reward 0).",
                                   read_in="generator/agent_loop.py", check=above(0))
    sections: dict[str, Any] = sections_field()


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
