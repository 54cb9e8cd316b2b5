"""Advantage estimators.

Every estimator is called with keyword arguments only::

    advantages, returns = fn(token_level_rewards=..., response_mask=..., index=..., values=None, config=cfg)

* ``token_level_rewards``: ``[batch, T]`` reward per response token (outcome rewards usually sit on the
  last valid token).
* ``response_mask``: ``[batch, T]`` float or bool 0/1; 1 on tokens the policy generated.
* ``index``: sequence of length ``batch`` (list, 1-D tensor or numpy array) giving each row's group id
  (any hashable: int or str). Rows sharing an id are samples for the same prompt.
* ``values``: ``[batch, T]`` critic values (only ``gae`` needs them).
* ``config``: object with attributes ``grpo_norm_by_std`` (default True), ``gamma`` (1.0), ``lambd`` (1.0);
  missing attributes take those defaults.

Both outputs are ``[batch, T]`` and are 0 where ``response_mask`` is 0. Semantics follow SkyRL's
``ppo_utils`` (itself derived from verl's ``core_algos``); deviations are stated per function.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch

from skyrl_core.errors import UserError

from .reduction import masked_whiten

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "compute_gae",
    "discounted_returns",
    "gae",
    "grpo",
    "reinforce_plus_plus",
    "reinforce_plus_plus_baseline",
    "rloo",
]

GRPO_EPS = 1e-6


def _cfg(config: Any, name: str, default: Any) -> Any:
    return default if config is None else getattr(config, name, default)


def _group_ids(index: Any, batch: int) -> list[Hashable]:
    """Normalise ``index`` (list / tuple / tensor / numpy array) to a python list of hashables."""
    ids = index.tolist() if hasattr(index, "tolist") else list(index)
    if len(ids) != batch:
        raise UserError(f"advantage index has {len(ids)} entries but the batch has {batch} rows")
    return ids


def _groups(ids: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = {}
    for row, gid in enumerate(ids):
        groups.setdefault(gid, []).append(row)
    return groups


def _scores(token_level_rewards: torch.Tensor) -> torch.Tensor:
    """A row's reward: the sum of its token rewards, whether or not its tokens are trained (as SkyRL and veRL
    do), so a response whose loss is masked (e.g. cut by the length limit) still counts in its group's baseline."""
    return token_level_rewards.sum(dim=-1)


def grpo(
    *,
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any,
    values: torch.Tensor | None = None,
    config: Any = None,
    **kw: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO outcome advantage (Shao et al. 2024, DeepSeekMath; SkyRL ``compute_grpo_outcome_advantage``).

    ``s_i = sum_t r_it`` (masked). For each group g with n >= 2 members:
    ``A_i = (s_i - mean_g) / (std_g + 1e-6)`` with ``std_g`` the unbiased (n - 1) standard deviation
    (``torch.std``), or ``A_i = s_i - mean_g`` when ``config.grpo_norm_by_std`` is False (Dr. GRPO).
    A group of size 1 uses mean 0 and std 1 (as SkyRL), so its advantage is ``s_i / (1 + 1e-6)`` (or ``s_i``).
    A group of n >= 2 whose scores are all equal gets exactly 0 (a departure from SkyRL, where float32 rounding of
    the mean, divided by ``std + 1e-6`` with std near 0, leaves advantages of the order of 1e-2).
    ``A_i`` is broadcast over the row's tokens and multiplied by the mask; ``returns = advantages``.
    """
    mask = response_mask.to(token_level_rewards.dtype)
    scores = _scores(token_level_rewards)
    norm_by_std = bool(_cfg(config, "grpo_norm_by_std", True))
    out = torch.zeros_like(scores)
    for rows in _groups(_group_ids(index, scores.shape[0])).values():
        idx = torch.tensor(rows, device=scores.device)
        s = scores[idx]
        if len(rows) == 1:
            mean, std = s.new_zeros(()), s.new_ones(())
        elif bool((s == s[0]).all()):
            continue  # all equal: no signal, advantage exactly 0
        else:
            mean, std = s.mean(), s.std()
        out[idx] = (s - mean) / (std + GRPO_EPS) if norm_by_std else s - mean
    adv = out.unsqueeze(-1) * mask
    return adv, adv


def rloo(
    *,
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any,
    values: torch.Tensor | None = None,
    config: Any = None,
    **kw: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RLOO, REINFORCE leave-one-out (Ahmadian et al. 2024; Kool et al. 2019; SkyRL ``compute_rloo...``).

    ``A_i = s_i - mean_{j != i} s_j = (s_i - mean_g) * n / (n - 1)`` for a group of n >= 2.
    A group of size 1 gets advantage 0 (no baseline exists), as SkyRL 0.3 does (verl leaves the raw score).
    Broadcast over tokens times the mask; ``returns = advantages``.
    """
    mask = response_mask.to(token_level_rewards.dtype)
    scores = _scores(token_level_rewards)
    out = torch.zeros_like(scores)
    for rows in _groups(_group_ids(index, scores.shape[0])).values():
        n = len(rows)
        if n == 1:
            continue
        idx = torch.tensor(rows, device=scores.device)
        s = scores[idx]
        out[idx] = (s - s.mean()) * (n / (n - 1))
    adv = out.unsqueeze(-1) * mask
    return adv, adv


def discounted_returns(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Masked discounted return-to-go: ``G_t = r_t + gamma * G_{t'}`` with ``t'`` the next *valid* token.

    Computed backward over each row. Tokens with mask 0 contribute no reward, are skipped (they neither
    discount nor reset the running return) and get ``G_t = 0``. Rows are independent.
    Deviation from verl/SkyRL: they reset the running return at every mask-0 token; for trailing padding
    (the usual case) both agree.
    """
    mask = response_mask.to(token_level_rewards.dtype)
    valid = mask > 0
    running = torch.zeros_like(token_level_rewards[:, 0])
    out = torch.zeros_like(token_level_rewards)
    for t in reversed(range(token_level_rewards.shape[1])):
        running = torch.where(valid[:, t], token_level_rewards[:, t] + gamma * running, running)
        out[:, t] = running * mask[:, t]
    return out


def reinforce_plus_plus(
    *,
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    values: torch.Tensor | None = None,
    config: Any = None,
    **kw: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE++ (Hu 2025, "REINFORCE++", arXiv:2501.03262; SkyRL ``compute_reinforce_plus_plus_outcome_advantage``).

    ``G = discounted_returns(r, mask, config.gamma)`` (see :func:`discounted_returns`), then the advantage is
    ``G`` whitened over all valid tokens of the batch: ``(G - mean) / sqrt(var + 1e-8)`` (unbiased var,
    :func:`~skyrl_core.algorithms.reduction.masked_whiten`). ``returns = G`` (un-whitened). ``index`` is unused.
    With trailing padding only (single-turn rows, EOS then padding) this equals SkyRL. Deviation on purpose: in
    multi-turn rows the observation tokens (mask 0 between turns) are skipped, so a later turn's reward reaches
    the earlier turns undiscounted by the observation's length; SkyRL resets the running return at every mask-0
    token, so earlier turns never see later rewards.
    """
    gamma = float(_cfg(config, "gamma", 1.0))
    returns = discounted_returns(token_level_rewards, response_mask, gamma)
    adv = masked_whiten(returns, response_mask)
    return adv, returns


def reinforce_plus_plus_baseline(
    *,
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any,
    values: torch.Tensor | None = None,
    config: Any = None,
    **kw: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE++ with a group-mean baseline (Hu 2025, arXiv:2501.03262, "REINFORCE++-baseline"; verl
    ``compute_reinforce_plus_plus_baseline_outcome_advantage``).

    ``s_i = sum_t r_it`` (masked); ``b_g`` = mean of ``s`` over the row's group (0 for a group of one);
    ``A_it = s_i - b_g`` on every valid token, then whitened over all valid tokens of the batch
    (:func:`~skyrl_core.algorithms.reduction.masked_whiten`): the group baseline removes the prompt's
    difficulty, the batch normalisation (instead of GRPO's per-group std) keeps the scale stable.
    ``returns = advantages`` (as verl). Outcome rewards only: there is no discounting, ``gamma`` is unused.
    """
    mask = response_mask.to(token_level_rewards.dtype)
    scores = _scores(token_level_rewards)
    centred = torch.zeros_like(scores)
    for rows in _groups(_group_ids(index, scores.shape[0])).values():
        idx = torch.tensor(rows, device=scores.device)
        s = scores[idx]
        centred[idx] = s if len(rows) == 1 else s - s.mean()
    adv = masked_whiten(centred.unsqueeze(-1) * mask, mask)
    return adv, adv


def compute_gae(
    token_level_rewards: torch.Tensor,
    values: torch.Tensor,
    response_mask: torch.Tensor,
    gamma: float,
    lambd: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Un-whitened GAE (Schulman et al. 2016, "High-Dimensional Continuous Control Using GAE").

    Backward over the valid tokens of each row (mask-0 tokens are skipped and get 0):
    ``delta_t = r_t + gamma * V_{t'} - V_t`` and ``A_t = delta_t + gamma * lambd * A_{t'}``, where ``t'`` is
    the next valid token and ``V_{t'} = A_{t'} = 0`` beyond the last valid token.
    Returns ``(A, A + V)`` both masked. With trailing padding only (rewards and values 0 there) this equals
    SkyRL's ``compute_gae_advantage_return`` on the valid tokens. Deviation on purpose: mask-0 tokens inside a row
    (observation tokens of a multi-turn row) are skipped, so the recursion jumps from a turn's last token to
    the next turn's first token; SkyRL counts them as ordinary steps (their values and one discount each).
    """
    mask = response_mask.to(token_level_rewards.dtype)
    valid = mask > 0
    values = values.to(token_level_rewards.dtype)
    next_value = torch.zeros_like(token_level_rewards[:, 0])
    last_gae = torch.zeros_like(next_value)
    adv = torch.zeros_like(token_level_rewards)
    for t in reversed(range(token_level_rewards.shape[1])):
        delta = token_level_rewards[:, t] + gamma * next_value - values[:, t]
        gae_t = delta + gamma * lambd * last_gae
        last_gae = torch.where(valid[:, t], gae_t, last_gae)
        next_value = torch.where(valid[:, t], values[:, t], next_value)
        adv[:, t] = gae_t * mask[:, t]
    returns = (adv + values) * mask
    return adv, returns


def gae(
    *,
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    values: torch.Tensor | None = None,
    config: Any = None,
    **kw: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's GAE advantage with a critic (SkyRL ``compute_gae_advantage_return``).

    ``A, returns = compute_gae(r, values, mask, config.gamma, config.lambd)``; the advantages are then
    whitened over the valid tokens of the batch (:func:`~skyrl_core.algorithms.reduction.masked_whiten`);
    returns (the critic targets) are ``A + V`` before whitening. Raises :class:`UserError` without ``values``.
    """
    if values is None:
        raise UserError("advantage estimator 'gae' needs a critic: set trainer.critic.model.path")
    gamma = float(_cfg(config, "gamma", 1.0))
    lambd = float(_cfg(config, "lambd", 1.0))
    adv, returns = compute_gae(token_level_rewards, values, response_mask, gamma, lambd)
    return masked_whiten(adv, response_mask), returns


ADVANTAGE_ESTIMATORS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "grpo": grpo,
    "gae": gae,
    "rloo": rloo,
    "reinforce++": reinforce_plus_plus,
    "reinforce++_baseline": reinforce_plus_plus_baseline,
}
