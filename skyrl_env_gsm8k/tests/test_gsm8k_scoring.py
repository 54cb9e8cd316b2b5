"""The GSM8K reward on hand-written GSM8K-style responses (no rows copied from the dataset)."""

from __future__ import annotations

import pytest

from skyrl_env_gsm8k.scoring import compute_score, extract_answer, normalize_number

# A made-up word problem: "A baker fills 14 trays with 36 rolls each and sells all but 27. How many did she sell?"
BAKER = (
    "Each tray holds 36 rolls, so 14 trays hold 14 * 36 = 504 rolls.\n"
    "She keeps 27, so she sells 504 - 27 = 477 rolls.\n"
    "#### 477"
)


def test_strict_reads_the_answer_after_the_marker():
    assert extract_answer(BAKER, "strict") == "477"
    assert compute_score(BAKER, "477") == 1.0


def test_strict_needs_the_marker_flexible_does_not():
    text = "14 * 36 = 504 and 504 - 27 = 477. The answer is 477."
    assert extract_answer(text, "strict") is None
    assert compute_score(text, "477", method="strict") == 0.0
    assert extract_answer(text, "flexible") == "477"
    assert compute_score(text, "477", method="flexible") == 1.0


def test_strict_takes_the_first_marker_flexible_the_last_number():
    text = "First try: #### 480\nOops, I forgot the 3 burnt rolls.\n#### 477"
    assert extract_answer(text, "strict") == "480"
    assert compute_score(text, "477", method="strict") == 0.0
    assert extract_answer(text, "flexible") == "477"
    assert compute_score(text, "477", method="flexible") == 1.0


def test_flexible_takes_the_last_number_even_if_wrong():
    text = "#### 477\nChecking: 477 + 27 = 504 rolls in all"
    assert extract_answer(text, "flexible") == "504"
    assert compute_score(text, "477", method="flexible") == 0.0
    assert compute_score(text, "477", method="strict") == 1.0


@pytest.mark.parametrize(
    ("response", "ground_truth"),
    [
        ("The bike costs #### $1,250", "1250"),  # dollar sign and thousands separator
        ("#### 1,250", "1,250"),  # ground truth with a comma
        ("#### 42.", "42"),  # sentence-ending point
        ("#### 42.0", "42"),
        ("#### 42.00", "42"),
        ("####    42   ", " 42 "),  # spaces around
        ("####42", "42"),  # no space after the marker
        ("#### +42", "42"),  # leading plus
        ("#### 3.50", "3.5"),  # trailing zero of a decimal
        ("#### .75", "0.75"),
        ("#### $ 7", "7"),
    ],
)
def test_normalisation(response, ground_truth):
    assert compute_score(response, ground_truth) == 1.0


def test_negative_and_decimal_numbers():
    # "The temperature fell from 4 degrees by 9.5 degrees."
    assert extract_answer("4 - 9.5 = -5.5\n#### -5.5", "strict") == "-5.5"
    assert compute_score("4 - 9.5 = -5.5\n#### -5.5", "-5.5") == 1.0
    assert compute_score("#### 5.5", "-5.5") == 0.0
    assert compute_score("so the change is -12", "-12", method="flexible") == 1.0
    assert compute_score("#### 2.25", "2.5") == 0.0


def test_missing_answer_scores_zero_even_with_a_format_score():
    assert extract_answer("I am not sure.", "strict") is None
    assert extract_answer("I am not sure.", "flexible") is None
    assert compute_score("I am not sure.", "477", format_score=0.1) == 0.0
    assert compute_score("#### none", "477", format_score=0.1) == 0.0
    assert compute_score("", "477", method="flexible", format_score=0.1) == 0.0


def test_format_score_for_a_wrong_but_well_formed_answer():
    assert compute_score("#### 478", "477", format_score=0.1) == 0.1
    assert compute_score("#### 477", "477", correct_score=2.0, format_score=0.1) == 2.0
    assert compute_score("the total is 478", "477", method="flexible", format_score=0.25) == 0.25


def test_numeric_ground_truth():
    assert compute_score("#### 18", 18) == 1.0
    assert compute_score("#### 18", 18.0) == 1.0


def test_punctuation_alone_is_not_a_number():
    assert extract_answer("Well... , . ,", "flexible") is None
    assert extract_answer("Lists: 3, 4, 5.", "flexible") == "5"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" $1,234.50 ", "1234.5"), ("+18.0", "18"), ("18.", "18"), ("-.5", "-0.5"), ("-0", "0"), ("100", "100"),
     ("0.000", "0"), ("abc", "abc")],
)
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="strict, flexible"):
        extract_answer("#### 1", "lenient")
