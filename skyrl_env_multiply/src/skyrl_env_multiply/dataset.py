"""The ``multiply`` dataset builder: synthetic n-digit multiplication problems, in SkyRL's tutorial format.

Each row (``docs/datasets.md``)::

    {"data_source": "synthetic_multiply",
     "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "What is 12 * 34?"}],
     "env_class": "multiply",
     "reward_spec": {"method": "rule", "ground_truth": "408"},
     "extra_info": {"num_digits": 2, "split": "train"}}

Problems are drawn with :class:`random.Random` seeded from ``seed`` (one stream per split), so the files are the
same for the same options on every machine. Validation problems are drawn first and the training problems avoid
them (``a * b`` and ``b * a`` count as the same problem); problems within a split are distinct while unused ones
remain. With very few possible problems (``num_digits=1``) the splits overlap only once the space is used up.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import attrs

from skyrl_core.data import DatasetBuilder, DatasetFiles
from skyrl_core.errors import UserError

DATA_SOURCE = "synthetic_multiply"
SYSTEM_PROMPT = (
    "You are a careful calculator. Multiply the two numbers in the question and give only the final result "
    "inside \\boxed{}, for example \\boxed{1234}."
)
MAX_DIGITS = 18


def _at_least(minimum: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: int) -> None:
        if value < minimum:
            raise UserError(f"--{attribute.name.replace('_', '-')} must be at least {minimum}, got {value}")

    return check


def _check_digits(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if not 1 <= value <= MAX_DIGITS:
        raise UserError(f"--num-digits must be between 1 and {MAX_DIGITS}, got {value}")


@attrs.define(kw_only=True)
class MultiplyDataConfig:
    """Options of ``skyrl data multiply`` (and the config section ``data.multiply``)."""

    num_digits: int = attrs.field(
        default=2, validator=_check_digits, metadata={"help": "Digits of each factor (2: 10..99 * 10..99)."}
    )
    train_size: int = attrs.field(default=1000, validator=_at_least(1), metadata={"help": "Training problems."})
    val_size: int = attrs.field(default=100, validator=_at_least(1), metadata={"help": "Validation problems."})
    seed: int = attrs.field(default=42, metadata={"help": "Random seed; the same seed gives the same files."})


def make_row(a: int, b: int, num_digits: int, split: str) -> dict[str, Any]:
    """The dataset row of the problem ``a * b``."""
    return {
        "data_source": DATA_SOURCE,
        "prompt": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"What is {a} * {b}?"},
        ],
        "env_class": "multiply",
        "reward_spec": {"method": "rule", "ground_truth": str(a * b)},
        "extra_info": {"num_digits": num_digits, "split": split},
    }


def sample_problems(
    rng: random.Random, count: int, num_digits: int, exclude: set[tuple[int, int]]
) -> list[tuple[int, int]]:
    """``count`` problems ``(a, b)`` with ``num_digits``-digit factors.

    A problem's key is the unordered pair. Keys in ``exclude`` are avoided and keys are not repeated while fresh
    ones remain; after that repeats are allowed, and ``exclude`` is ignored only when it covers every problem.
    """
    low, high = 10 ** (num_digits - 1), 10**num_digits - 1
    values = high - low + 1
    total = values * (values + 1) // 2  # unordered pairs
    seen: set[tuple[int, int]] = set()
    problems: list[tuple[int, int]] = []
    while len(problems) < count:
        a, b = rng.randint(low, high), rng.randint(low, high)
        key = (min(a, b), max(a, b))
        if total - len(exclude) - len(seen) > 0:
            if key in exclude or key in seen:
                continue
        elif total > len(exclude) and key in exclude:
            continue
        seen.add(key)
        problems.append((a, b))
    return problems


class MultiplyDatasetBuilder(DatasetBuilder):
    """Writes ``train.parquet`` and ``validation.parquet`` for the ``multiply`` env (see the module docstring)."""

    #: The answer is one short ``\\boxed{}`` number and the prompts are two short messages. Eval sampling stays
    #: greedy (skyrl's default) with the same short budget.
    config_defaults = {
        "generator.sampling_params.max_generate_length": 64,
        "generator.eval_sampling_params.max_generate_length": 64,
        "generator.eval_sampling_params.temperature": 0.0,
        "trainer.max_prompt_length": 128,
    }

    def build(self, output_dir: Path, config: MultiplyDataConfig | None) -> DatasetFiles:
        import pyarrow as pa
        import pyarrow.parquet as pq

        config = config if config is not None else MultiplyDataConfig()
        val = sample_problems(random.Random(f"multiply-{config.seed}-validation"), config.val_size,
                              config.num_digits, exclude=set())
        val_keys = {(min(a, b), max(a, b)) for a, b in val}
        train = sample_problems(random.Random(f"multiply-{config.seed}-train"), config.train_size,
                                config.num_digits, exclude=val_keys)
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        files = DatasetFiles(train=output_dir / "train.parquet", validation=output_dir / "validation.parquet")
        for problems, split, path in ((train, "train", files.train), (val, "validation", files.validation)):
            rows = [make_row(a, b, config.num_digits, split) for a, b in problems]
            pq.write_table(pa.Table.from_pylist(rows), path)
        return files
