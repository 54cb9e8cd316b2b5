"""The seeded, resumable dataloader (skyrl_core.data.loader)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from skyrl_core.data.loader import PromptDataLoader
from skyrl_core.data.reader import PromptRow
from skyrl_core.errors import DataError


def make_rows(n: int) -> list[PromptRow]:
    return [
        PromptRow(index=i, prompt=[{"role": "user", "content": str(i)}], env_class="e", extras={}) for i in range(n)
    ]


def indices(batches) -> list[list[int]]:
    return [[row.index for row in batch] for batch in batches]


def test_batches_cover_every_epoch_once():
    loader = PromptDataLoader(make_rows(10), batch_size=3, seed=1, epochs=2)
    assert loader.steps_per_epoch == 3 and loader.total_steps == 6 and len(loader) == 6
    batches = indices(loader)
    assert len(batches) == 6 and all(len(b) == 3 for b in batches)
    for epoch in range(2):
        seen = [i for b in batches[3 * epoch : 3 * epoch + 3] for i in b]
        assert len(set(seen)) == 9  # drop_last leaves one row out per epoch
    assert loader.epoch == 2 and loader.position == 0 and loader.remaining_steps == 0
    assert list(loader) == []  # exhausted: the loader is a cursor


def test_epochs_have_different_orders():
    loader = PromptDataLoader(make_rows(20), batch_size=20, seed=0, epochs=3)
    orders = indices(loader)
    assert len({tuple(o) for o in orders}) == 3
    assert all(sorted(o) == list(range(20)) for o in orders)


def test_deterministic_for_the_same_seed():
    a = indices(PromptDataLoader(make_rows(17), batch_size=4, seed=7, epochs=2))
    b = indices(PromptDataLoader(make_rows(17), batch_size=4, seed=7, epochs=2))
    c = indices(PromptDataLoader(make_rows(17), batch_size=4, seed=8, epochs=2))
    assert a == b and a != c


def test_order_does_not_depend_on_python_hash_seed():
    code = (
        "import json; from skyrl_core.data.loader import PromptDataLoader;"
        "print(json.dumps(list(PromptDataLoader(list(range(12)), batch_size=12, seed=3, epochs=1))))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": hash_seed}
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == list(PromptDataLoader(list(range(12)), batch_size=12, seed=3, epochs=1))


def test_no_shuffle_keeps_order_and_drop_last_false_yields_partial_batch():
    loader = PromptDataLoader(make_rows(7), batch_size=3, seed=0, epochs=2, shuffle=False, drop_last=False)
    assert loader.steps_per_epoch == 3 and loader.total_steps == 6
    assert indices(loader) == [[0, 1, 2], [3, 4, 5], [6]] * 2


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 7, 9])
def test_resume_yields_the_same_remaining_batches(k):
    # 3 batches per epoch: k=3 is exactly at an epoch boundary, k=4 and k=7 are across it.
    rows = make_rows(11)
    reference = indices(PromptDataLoader(rows, batch_size=3, seed=5, epochs=3))
    original = PromptDataLoader(rows, batch_size=3, seed=5, epochs=3)
    it = iter(original)
    taken = [next(it) for _ in range(k)]
    state = json.loads(json.dumps(original.state_dict()))  # survives a JSON checkpoint
    assert state["epoch"] == k // 3 and state["position"] == k % 3 and state["dataset_size"] == 11
    assert original.steps_done == k

    restored = PromptDataLoader(rows, batch_size=3, seed=5, epochs=3)
    restored.load_state_dict(state)
    assert (restored.epoch, restored.position) == (original.epoch, original.position)
    assert indices(taken) + indices(restored) == reference
    assert indices(it) == reference[k:]  # the original continues identically


def test_resume_adopts_the_checkpoint_seed():
    rows = make_rows(8)
    original = PromptDataLoader(rows, batch_size=2, seed=1, epochs=2)
    it = iter(original)
    next(it)
    restored = PromptDataLoader(rows, batch_size=2, seed=99, epochs=2)
    restored.load_state_dict(original.state_dict())
    assert indices(restored) == indices(it)


def test_resume_with_changed_dataset_is_an_error():
    loader = PromptDataLoader(make_rows(10), batch_size=2, seed=0, epochs=1)
    next(iter(loader))
    other = PromptDataLoader(make_rows(9), batch_size=2, seed=0, epochs=1)
    with pytest.raises(DataError, match="dataset changed since the checkpoint.*10 prompts, now 9"):
        other.load_state_dict(loader.state_dict())


def test_resume_with_changed_batch_size_continues_after_the_rows_seen(caplog):
    rows = make_rows(12)
    loader = PromptDataLoader(rows, batch_size=2, seed=0, epochs=1)
    it = iter(loader)
    seen = indices([next(it) for _ in range(3)])  # 6 prompts of the epoch
    other = PromptDataLoader(rows, batch_size=3, seed=0, epochs=1)
    with caplog.at_level("WARNING", logger="skyrl.data"):
        other.load_state_dict(loader.state_dict())
    assert "train_batch_size changed" in caplog.text
    rest = indices(other)
    flat = [i for batch in seen + rest for i in batch]
    assert flat == [rows[i].index for i in loader.epoch_order(0)]  # nothing skipped, nothing repeated
    assert [len(b) for b in rest] == [3, 3]


def test_batch_larger_than_dataset():
    with pytest.raises(DataError, match=r"trainer.train_batch_size=8 is larger than the dataset \(5 prompts\)"):
        PromptDataLoader(make_rows(5), batch_size=8, seed=0, epochs=1)
    loader = PromptDataLoader(make_rows(5), batch_size=8, seed=0, epochs=2, drop_last=False)
    assert [len(b) for b in loader] == [5, 5]


def test_invalid_arguments():
    with pytest.raises(DataError, match="empty"):
        PromptDataLoader([], batch_size=1, seed=0, epochs=1)
    with pytest.raises(DataError, match="train_batch_size must be at least 1"):
        PromptDataLoader(make_rows(3), batch_size=0, seed=0, epochs=1)
    with pytest.raises(DataError, match="epochs"):
        PromptDataLoader(make_rows(3), batch_size=1, seed=0, epochs=0)
    loader = PromptDataLoader(make_rows(3), batch_size=1, seed=0, epochs=1)
    with pytest.raises(DataError, match="invalid dataloader state"):
        loader.load_state_dict({"epoch": 0})
