"""DAPO's overlong reward shaping (Yu et al. 2025, section 3.4): soft overlong punishment and overlong filtering.

Both are batch hooks and read ``trainer.algorithm.presets.dapo``. A response's length ``|y|`` is its number of
tokens after the prompt (``len(batch.output.response_ids[i])``); ``L_max`` is
``generator.sampling_params.max_generate_length``, the limit of one generation (one turn).
"""

from __future__ import annotations

from typing import Any

from skyrl_algo_dapo.config import dapo_section
from skyrl_core.errors import UserError
from skyrl_core.trainer.batch import RolloutBatch

#: The stop reason of a response cut by the length limit (see :class:`skyrl_core.generator.GeneratorOutput`).
LENGTH = "length"


def overlong_penalty(length: int, max_length: int, buffer_len: int, factor: float) -> float:
    """Soft overlong punishment, DAPO eq. 13 scaled by ``factor``; with ``L_cache = buffer_len``::

        R_length(y) = 0                                   if |y| <= L_max - L_cache
                    = ((L_max - L_cache) - |y|) / L_cache   if L_max - L_cache < |y| <= L_max
                    = -1                                  if |y| > L_max

    and the penalty is ``factor * R_length(y)``: 0 at the start of the buffer, falling linearly to ``-factor``
    at ``L_max`` (e.g. ``L_max=16, L_cache=4, factor=1``: lengths 12, 13, 14, 16 give 0, -0.25, -0.5, -1).
    """
    start = max_length - buffer_len
    if length <= start:
        return 0.0
    if length > max_length:
        return -factor
    return factor * (start - length) / buffer_len


def soft_overlong_punishment(batch: RolloutBatch, config: Any) -> RolloutBatch:
    """Batch hook: add :func:`overlong_penalty` to each response's token reward on its last token.

    The last response token is where skyrl's generator puts the (final turn's) reward. The penalty changes the
    rewards advantages are computed from; ``batch.output.rewards`` (the environment's rewards, which the
    ``reward/*`` metrics report) is left as it was.
    """
    section = dapo_section(config)
    if not section.apply_soft_overlong_punishment:
        return batch
    max_length = config.generator.sampling_params.max_generate_length
    buffer_len = section.buffer_len(max_length)
    if buffer_len > max_length:
        raise UserError(
            f"trainer.algorithm.presets.dapo.overlong_buffer_len={buffer_len} is longer than "
            f"generator.sampling_params.max_generate_length={max_length}; the buffer is the last tokens of that "
            "limit. Lower overlong_buffer_len or set it to null (a fifth of the limit, as in the paper), raise "
            "max_generate_length, or set trainer.algorithm.presets.dapo.apply_soft_overlong_punishment=false"
        )
    rewards = batch.tensors["token_rewards"].clone()
    for row, response in enumerate(batch.output.response_ids):
        length = len(response)
        if length:
            rewards[row, length - 1] += overlong_penalty(length, max_length, buffer_len,
                                                         section.overlong_buffer_penalty_factor)
    batch.tensors["token_rewards"] = rewards
    return batch


def overlong_filtering(batch: RolloutBatch, config: Any) -> RolloutBatch:
    """Batch hook: zero the loss mask of responses whose stop reason is ``"length"`` (truncated ones).

    Their tokens then carry no loss and no advantage (skyrl multiplies advantages by the mask), so a truncated
    response contributes no gradient, whatever its reward.
    """
    if not dapo_section(config).apply_overlong_filtering:
        return batch
    truncated = [row for row, reason in enumerate(batch.output.stop_reasons) if reason == LENGTH]
    if truncated:
        mask = batch.tensors["loss_mask"].clone()
        mask[truncated] = 0.0
        batch.tensors["loss_mask"] = mask
    return batch
