"""Dynamic sampling: keep only prompt groups whose rewards differ (``trainer.algorithm.dynamic_sampling.type``).

A group whose rewards are all equal has GRPO advantage 0 for every response, so it adds no gradient and only
shrinks the effective batch (DAPO, Yu et al. 2025, section 3.2). Two ways out:

* ``filter`` (DAPO): drop those groups. The preset sets ``refill_batches=True``, so skyrl generates more prompts
  within the step until ``trainer.train_batch_size`` groups are kept, at most
  ``trainer.algorithm.dynamic_sampling.max_sample_batches`` rounds (:mod:`skyrl_core.trainer.sampling`).
* ``replace`` (POLARIS, An et al. 2025): overwrite each such group with a copy of an informative group, so the
  batch keeps its size without generating more. When at most ``dynamic_sampling.min_replace_ratio`` of the round's
  groups are informative, the round is discarded (SkyRL's rule) and skyrl's refill generates a new one, within the
  same ``max_sample_batches`` limit.

"Rewards" are the trajectories' total rewards from the environment (``batch.output.rewards``), before DAPO's
overlong penalty, as in SkyRL and in the DAPO recipe (which filters on accuracy). A group of one response is
always kept: it has no variance to judge.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from skyrl_core.trainer.batch import RolloutBatch

log = logging.getLogger("skyrl")

#: Rewards closer than this count as equal (float noise of summed turn rewards).
REWARD_TOLERANCE = 1e-6


def group_rows(group_ids: list[Any]) -> dict[Any, list[int]]:
    """Group id -> its rows, groups in order of first appearance."""
    groups: dict[Any, list[int]] = {}
    for row, gid in enumerate(group_ids):
        groups.setdefault(gid, []).append(row)
    return groups


def informative_groups(batch: RolloutBatch) -> list[Any]:
    """The group ids whose rewards are not all equal (and the single-response groups), in batch order."""
    rewards = batch.output.rewards
    found = []
    for gid, rows in group_rows(batch.group_ids).items():
        values = [rewards[r] for r in rows]
        if len(rows) == 1 or max(values) - min(values) > REWARD_TOLERANCE:
            found.append(gid)
    return found


def filter_groups(batch: RolloutBatch) -> RolloutBatch:
    """DAPO's filter: the rows of the informative groups only."""
    keep = set(informative_groups(batch))
    return batch.select_groups(lambda gid: gid in keep)


def replace_groups(batch: RolloutBatch, min_replace_ratio: float) -> RolloutBatch:
    """POLARIS' replace: the batch with every uninformative group overwritten by a copy of an informative one.

    Copies are taken round-robin from the informative groups in batch order (POLARIS draws them at random; the
    dataloader has already shuffled the prompts) and get their own group id ``("copy", position, source_id)``
    (``position``: the replaced group's place), so the copy's advantages equal the source's and skyrl counts the
    batch as full. When at most ``min_replace_ratio`` of the groups are informative, returns no rows (skyrl then
    generates a new round, see the module doc).
    """
    groups = group_rows(batch.group_ids)
    good = informative_groups(batch)
    if len(good) <= len(groups) * min_replace_ratio:
        log.warning("dynamic sampling (replace): only %d of %d prompt groups have rewards that differ (needed: "
                    "more than min_replace_ratio=%s); discarding this round and generating another",
                    len(good), len(groups), min_replace_ratio)
        return batch.select([])
    if len(good) == len(groups):
        return batch
    informative = set(good)
    sources = itertools.cycle(good)
    rows: list[int] = []
    ids: list[Any] = []
    for position, (gid, members) in enumerate(groups.items()):
        if gid in informative:
            rows += members
            ids += [gid] * len(members)
        else:
            source = next(sources)
            rows += groups[source]
            ids += [("copy", position, source)] * len(groups[source])
    replaced = batch.select(rows)
    return RolloutBatch(tensors=replaced.tensors, group_ids=ids, output=replaced.output)


def dynamic_sampling(batch: RolloutBatch, config: Any) -> RolloutBatch:
    """Batch hook: ``trainer.algorithm.dynamic_sampling.type`` = ``filter``, ``replace`` or null (off)."""
    settings = config.trainer.algorithm.dynamic_sampling
    if settings.type == "filter":
        return filter_groups(batch)
    if settings.type == "replace":
        return replace_groups(batch, settings.min_replace_ratio)
    return batch
