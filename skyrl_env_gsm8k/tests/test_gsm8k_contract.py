"""The ``gsm8k`` env against skyrl's env contract (:class:`skyrl_core.testing.EnvContract`)."""

from __future__ import annotations

from skyrl_core.testing import EnvContract, EnvSample
from skyrl_env_gsm8k.dataset import make_row
from skyrl_env_gsm8k.env import GSM8KEnvConfig

# Invented GSM8K-style problems (not from the GSM8K data set), answers ending in "#### <number>".
BAKERY = make_row(
    "A bakery bakes 6 trays of 14 rolls and sells all but 9 of them. How many rolls does it sell?",
    "It bakes 6 * 14 = <<6*14=84>>84 rolls. It sells 84 - 9 = <<84-9=75>>75 rolls.\n#### 75",
    "train", 0,
)
TICKETS = make_row(
    "Concert tickets cost $12.50 each. How much do 8 tickets cost in dollars?",
    "8 * 12.50 = <<8*12.5=100>>100 dollars.\n#### 100",
    "test", 1,
)
GARDEN = make_row(
    "A garden has 3 rows of 1,250 tulips and 4 rows of 500 daisies. How many flowers are there?",
    "3 * 1250 = 3750 tulips and 4 * 500 = 2000 daisies, so 3750 + 2000 = 5750.\n#### 5,750",
    "train", 2,
)


class TestGsm8kEnvContract(EnvContract):
    env_name = "gsm8k"
    samples = [
        EnvSample(row=BAKERY, right="84 rolls, 84 - 9 = 75 sold.\n#### 75", wrong="84 + 9 = 93.\n#### 93"),
        EnvSample(row=TICKETS, right="8 * 12.5 = 100\n#### $100.00", wrong="The answer is 100."),
        EnvSample(row=GARDEN, right="#### 5,750", wrong="#### 5570"),
    ]


class TestGsm8kFlexibleContract(EnvContract):
    """A non-default env config: flexible extraction and a format score for a wrong number."""

    env_name = "gsm8k"
    env_config = GSM8KEnvConfig(method="flexible", format_score=0.1)
    samples = [
        EnvSample(row=BAKERY, right="So it sells 75 rolls.", wrong="So it sells 93 rolls.", wrong_reward=0.1),
        EnvSample(row=TICKETS, right="They cost $100.", wrong="no number here", wrong_reward=0.0),
    ]
