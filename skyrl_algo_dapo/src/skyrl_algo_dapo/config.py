"""DAPO's config section, ``trainer.algorithm.presets.dapo`` (every key settable by a dotted key).

Defaults follow the paper (Yu et al. 2025): overlong filtering, and soft overlong punishment with penalty factor 1.0
over the last fifth of the generation limit (the paper's 4096 of 20480 tokens; a fraction rather than a length so
that an env's shorter limit keeps a sensible buffer). Only ``attrs`` and skyrl's field checks are imported here, so
``skyrl plugins`` stays light.

Dynamic sampling is set with skyrl's own keys, ``trainer.algorithm.dynamic_sampling.{type,max_sample_batches,
min_replace_ratio}`` (the preset sets ``type=filter``); skyrl refuses ``type`` for presets without batch hooks.
"""

from __future__ import annotations

from typing import Any

import attrs

from skyrl_core.config.checks import at_least


def _option(default: Any, help: str, check: Any = None) -> Any:
    return attrs.field(default=default, validator=check, metadata={"help": help})


@attrs.define(kw_only=True)
class DapoConfig:
    """The keys of ``trainer.algorithm.presets.dapo``."""

    apply_overlong_filtering: bool = _option(
        True, "Zero the loss mask of responses that stopped at the length limit (stop reason 'length').")
    apply_soft_overlong_punishment: bool = _option(
        True, "Add the soft overlong penalty to the reward of responses inside the overlong buffer.")
    overlong_buffer_len: int | None = _option(
        None, "Tokens at the end of generator.sampling_params.max_generate_length over which the penalty grows "
        "from 0 to the factor; null: a fifth of max_generate_length (the paper's 4096 of 20480).", at_least(1))
    overlong_buffer_penalty_factor: float = _option(
        1.0, "Penalty of a response of exactly max_generate_length tokens.", at_least(0))

    def buffer_len(self, max_length: int) -> int:
        """``overlong_buffer_len``, or a fifth of ``max_length`` (at least 1) when it is null."""
        return self.overlong_buffer_len if self.overlong_buffer_len is not None else max(1, max_length // 5)


def dapo_section(config: Any) -> DapoConfig:
    """The run's DAPO section: the section of the selected preset (``trainer.algorithm.presets.<preset>``).

    A preset that reuses DAPO's batch hooks without registering :class:`DapoConfig` gets its defaults.
    """
    algorithm = config.trainer.algorithm
    section = algorithm.sections.get("algorithms", {}).get(algorithm.preset)
    return section if isinstance(section, DapoConfig) else DapoConfig()
