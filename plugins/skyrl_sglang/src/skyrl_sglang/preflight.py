"""Driver-side checks of a run that selects ``generator.backend=sglang``, before any actor starts.

Refused (one :class:`~skyrl_core.errors.UserError`, exit 2): SGLang or a CUDA GPU missing; log-probs asked for with
``repetition_penalty != 1`` (SGLang applies penalties before its log-probs; :mod:`skyrl_sglang.args`).
"""

from __future__ import annotations

from typing import Any

from skyrl_core.errors import UserError
from skyrl_sglang import runtime
from skyrl_sglang.args import logprob_contract_problems


def problems(config: Any) -> list[str]:
    """Everything :func:`check` refuses in ``config`` (a resolved ``SkyRLConfig``), except the runtime."""
    sampling = config.generator.sampling_params
    penalties = logprob_contract_problems(sampling)
    if sampling.logprobs is not None and penalties:
        return [f"{', '.join(penalties)} with generator.backend=sglang is not supported yet: SGLang reports "
                "log-probs after the penalty, not of the distribution the trainer uses; set "
                "repetition_penalty=1.0 or generator.sampling_params.logprobs=null"]
    return []


def check(config: Any) -> None:
    runtime.require()
    found = problems(config)
    if found:
        raise UserError("generator.backend=sglang: " + "; ".join(found))
