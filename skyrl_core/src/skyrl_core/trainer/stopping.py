"""Stopping a run cleanly on Ctrl-C (SIGINT) or preemption (SIGTERM).

The first signal asks the trainer to stop after the step in progress: it finishes the step, writes a checkpoint
(``trainer.ckpt_on_signal``, on by default), flushes the metrics, shuts the workers down and exits with
``128 + signal`` (130 for SIGINT, 143 for SIGTERM). A second signal stops at once (Python's default behaviour),
for a run stuck in a step; the checkpoints already written stay valid.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from skyrl_core.errors import SkyrlError

log = logging.getLogger("skyrl")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunStopped(SkyrlError):
    """The run stopped on a signal after saving what it could; the exit status is ``128 + signal``."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopRequest:
    """Records the first SIGINT/SIGTERM while installed; the trainer polls :attr:`signum` between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set from the main thread: leave Python's defaults
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # a second signal: stop now
            self.__exit__()
            signal.raise_signal(signum)
            return
        self.signum = signum
        log.warning("%s received: stopping after the current step (with a checkpoint unless "
                    "trainer.ckpt_on_signal=false); send it again to stop at once", signal.Signals(signum).name)

    @property
    def requested(self) -> bool:
        return self.signum is not None
