"""The GSM8K reward: pull the final number out of a response and compare it with the ground truth.

This is the rule-based GSM8K reward used by veRL (``verl/utils/reward_score/gsm8k.py``) and by SkyRL's
``skyrl_gym`` ``gsm8k`` env, with a more forgiving number normalisation.

Formula::

    answer = extract_answer(text, method)
    score  = 0.0            if answer is None                          (no answer found)
             correct_score  if answer == normalize_number(ground_truth) (right answer)
             format_score   otherwise                                   (an answer, but a wrong one)

Extraction methods:

- ``strict``: the number after the FIRST ``####`` marker (``#### 42``), as in SkyRL. The model must use the
  GSM8K answer format to get any reward.
- ``flexible``: the LAST number anywhere in the text.

Numbers may be negative or decimal and may carry thousands separators and a dollar sign. Both the extracted answer
and the ground truth go through :func:`normalize_number`.

Deviations from veRL/SkyRL (which only drop ``,`` and ``$`` and compare strings exactly):

- any whitespace (or none) is accepted between ``####`` and the number (veRL requires exactly one space);
- a leading ``+`` is dropped, ``.5`` becomes ``0.5``;
- after a decimal point, trailing zeros and then a trailing point are dropped, so ``18.``, ``18.0``, ``18.00``
  all read ``18`` and ``2.50`` reads ``2.5``;
- a match that is only punctuation (``.``, ``,``) is never an answer.
"""

from __future__ import annotations

import re

METHODS = ("strict", "flexible")

# A signed number: optional sign, optional dollar sign, digits with thousands separators and an optional decimal
# part (or a bare decimal part such as ``.5``).
_NUMBER = r"[-+]?(?:\$\s*)?[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(_NUMBER)
_STRICT_RE = re.compile(r"####\s*(" + _NUMBER + r")")


def normalize_number(value: object) -> str:
    """Canonical text of a number: ``" $1,234.50 "`` -> ``"1234.5"``, ``"+18.0"`` -> ``"18"``.

    Removes surrounding whitespace, commas and ``$``, a leading ``+``, trailing zeros after a decimal point and a
    trailing decimal point; ``.5`` becomes ``0.5``. Text that is not a number is returned stripped, with the same
    character removals applied, so it can still be compared.
    """
    text = str(value).strip().replace(",", "").replace("$", "").replace(" ", "")
    sign = ""
    if text and text[0] in "+-":
        sign, text = ("-" if text[0] == "-" else ""), text[1:]
    if text.count(".") == 1 and text.replace(".", "").isdigit():
        whole, frac = text.split(".")
        frac = frac.rstrip("0")
        text = (whole or "0") + ("." + frac if frac else "")
    if text in ("", "0") and sign == "-":
        sign = ""
    return sign + text


def extract_answer(text: str, method: str = "strict") -> str | None:
    """The normalised final answer of ``text``, or ``None`` when there is none.

    :param text: the model's response.
    :param method: ``"strict"`` (the first ``#### <number>``) or ``"flexible"`` (the last number in the text).
    :raises ValueError: for an unknown method.
    """
    if method == "strict":
        match = _STRICT_RE.search(text)
        candidates = [match.group(1)] if match else []
    elif method == "flexible":
        candidates = _NUMBER_RE.findall(text)
    else:
        raise ValueError(f"unknown GSM8K scoring method {method!r}; use one of: {', '.join(METHODS)}")
    for candidate in reversed(candidates):
        answer = normalize_number(candidate)
        if any(ch.isdigit() for ch in answer):
            return answer
    return None


def compute_score(
    text: str,
    ground_truth: object,
    method: str = "strict",
    correct_score: float = 1.0,
    format_score: float = 0.0,
) -> float:
    """Score one response against the ground truth (see the module docstring for the formula).

    :param text: the model's response.
    :param ground_truth: the reference answer (a number or its text, e.g. ``"1,200"``).
    :param method: ``"strict"`` or ``"flexible"``.
    :param correct_score: the reward of a correct answer.
    :param format_score: the reward of an answer that was found but is wrong.
    :returns: ``correct_score``, ``format_score`` or ``0.0`` when no answer was found.
    """
    answer = extract_answer(text, method)
    if answer is None:
        return 0.0
    return correct_score if answer == normalize_number(ground_truth) else format_score
