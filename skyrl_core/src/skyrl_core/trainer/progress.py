"""The progress bar shown on the terminal while a batch is generated (nothing is drawn when not a terminal)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_console = Console(stderr=True)


@contextlib.contextmanager
def generation_progress(generator: Any, description: str) -> Iterator[None]:
    """Show finished/total trajectories for generators that report progress through ``on_progress``."""
    if not hasattr(generator, "on_progress") or not _console.is_terminal:
        yield
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(finished: int, total: int) -> None:
            progress.update(task, completed=finished, total=total)

        generator.on_progress = update
        try:
            yield
        finally:
            generator.on_progress = None
