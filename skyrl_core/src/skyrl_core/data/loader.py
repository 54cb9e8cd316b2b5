"""The seeded, resumable prompt dataloader.

:class:`PromptDataLoader` yields batches of rows for a fixed number of epochs. Each epoch visits the rows in its
own order, a permutation drawn from ``random.Random(f"{seed}-{epoch}")``: string seeds are hashed with SHA-512, so
the order is the same on every machine and for every ``PYTHONHASHSEED``. The loader is a cursor: iterating it
continues from where it stopped, and :meth:`~PromptDataLoader.state_dict` / :meth:`~PromptDataLoader.load_state_dict`
save and restore that cursor, so a run resumed from a checkpoint sees exactly the batches it would have seen.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

from skyrl_core.errors import DataError

__all__ = ["PromptDataLoader"]

logger = logging.getLogger("skyrl.data")

T = TypeVar("T")


class PromptDataLoader(Generic[T]):
    """Batches of ``batch_size`` rows over ``epochs`` epochs, in a seeded per-epoch order.

    :param dataset_rows: the rows (usually :class:`~skyrl_core.data.reader.PromptRow`); not copied.
    :param batch_size: rows per batch (``trainer.train_batch_size``).
    :param seed: the seed of the per-epoch permutations.
    :param epochs: number of passes over the data.
    :param shuffle: ``False`` keeps the dataset order in every epoch.
    :param drop_last: ``True`` skips each epoch's final partial batch; ``False`` yields it.
    """

    def __init__(
        self,
        dataset_rows: Sequence[T],
        *,
        batch_size: int,
        seed: int,
        epochs: int,
        shuffle: bool = True,
        drop_last: bool = True,
    ):
        size = len(dataset_rows)
        if size == 0:
            raise DataError("the dataset is empty; there is nothing to train on")
        if batch_size < 1:
            raise DataError(f"trainer.train_batch_size must be at least 1, got {batch_size}")
        if epochs < 1:
            raise DataError(f"the number of epochs must be at least 1, got {epochs}")
        if drop_last and batch_size > size:
            raise DataError(
                f"trainer.train_batch_size={batch_size} is larger than the dataset ({size} prompts), so not even "
                f"one full batch can be drawn; lower trainer.train_batch_size to at most {size} or add data"
            )
        self._rows = dataset_rows
        self.batch_size = batch_size
        self.seed = seed
        self.epochs = epochs
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._epoch = 0
        self._position = 0
        self._order_cache: tuple[int, list[int]] | None = None

    # ------------------------------------------------------------------------------------------- sizes, cursor

    @property
    def dataset_size(self) -> int:
        return len(self._rows)

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch."""
        n = self.dataset_size
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def total_steps(self) -> int:
        """Batches over all epochs."""
        return self.steps_per_epoch * self.epochs

    @property
    def epoch(self) -> int:
        """The epoch of the next batch (equal to ``epochs`` once everything has been yielded)."""
        return self._epoch

    @property
    def position(self) -> int:
        """Index of the next batch within :attr:`epoch`."""
        return self._position

    @property
    def steps_done(self) -> int:
        """Batches yielded so far, over all epochs."""
        return min(self._epoch * self.steps_per_epoch + self._position, self.total_steps)

    @property
    def remaining_steps(self) -> int:
        return self.total_steps - self.steps_done

    def __len__(self) -> int:
        """Batches over all epochs (:attr:`total_steps`), including those already yielded."""
        return self.total_steps

    # ------------------------------------------------------------------------------------------- iteration

    def epoch_order(self, epoch: int) -> list[int]:
        """The order in which ``epoch`` visits the rows (a permutation of ``range(dataset_size)``)."""
        if self._order_cache is not None and self._order_cache[0] == epoch:
            return self._order_cache[1]
        order = list(range(self.dataset_size))
        if self.shuffle:
            random.Random(f"{self.seed}-{epoch}").shuffle(order)
        self._order_cache = (epoch, order)
        return order

    def __iter__(self) -> Iterator[list[T]]:
        """Yield the remaining batches; the cursor advances as each batch is handed out."""
        while self._epoch < self.epochs:
            if self._position >= self.steps_per_epoch:
                self._epoch, self._position = self._epoch + 1, 0
                continue
            order = self.epoch_order(self._epoch)
            start = self._position * self.batch_size
            batch = [self._rows[i] for i in order[start : start + self.batch_size]]
            self._position += 1
            if self._position >= self.steps_per_epoch:
                self._epoch, self._position = self._epoch + 1, 0
            yield batch

    # ------------------------------------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, Any]:
        """The cursor, as plain ints (JSON-serialisable)."""
        return {
            "epoch": self._epoch,
            "position": self._position,
            "seed": self.seed,
            "dataset_size": self.dataset_size,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (taken by :meth:`state_dict`), with its seed.

        Raises :class:`DataError` when the dataset size differs from the checkpoint's, since the remaining batches
        could then not be the ones the original run would have seen. A different batch size is allowed (with a
        warning): the cursor moves to the first batch after the prompts already trained on in this epoch.
        """
        try:
            epoch, position = int(state["epoch"]), int(state["position"])
            seed, size = state["seed"], int(state["dataset_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"invalid dataloader state in the checkpoint ({exc!r}): {state!r}") from exc
        if size != self.dataset_size:
            raise DataError(
                f"the dataset changed since the checkpoint: it had {size} prompts, now {self.dataset_size}; "
                "resume with the same data files and trainer.max_prompt_length, or start a new run"
            )
        batch_size = int(state.get("batch_size", self.batch_size))
        if batch_size != self.batch_size:
            # keep the rows already seen in this epoch: continue after them in the same epoch order
            position = position * batch_size // self.batch_size
            logger.warning("trainer.train_batch_size changed since the checkpoint (from %d to %d): continuing "
                           "after the %d prompts of epoch %d already trained on", batch_size, self.batch_size,
                           position * self.batch_size, epoch)
        if epoch < 0 or not 0 <= position <= self.steps_per_epoch:
            raise DataError(f"invalid dataloader state in the checkpoint: epoch {epoch}, position {position}")
        if seed != self.seed:
            logger.warning("resuming the dataloader with the checkpoint's seed %s instead of %s", seed, self.seed)
            self.seed = seed
            self._order_cache = None
        if position == self.steps_per_epoch:
            epoch, position = epoch + 1, 0
        self._epoch, self._position = epoch, position
