"""The CLI's console, logging and progress bars.

Progress bars show on a terminal and stay quiet in CI logs (no TTY, or ``CI`` set): there,
long steps log one line when they start and one when they end.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)

log = logging.getLogger("ru")


def interactive() -> bool:
    """True on a real terminal outside CI: the only place progress bars are drawn."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler = RichHandler(console=console, show_path=False, show_time=interactive())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    for noisy in ("great_expectations", "prefect", "httpx", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _Step:
    """Handle of a progress step: ``advance(n)`` and ``total`` updates."""

    def __init__(self, progress: Progress | None, task_id, label: str):
        self._progress = progress
        self._task_id = task_id
        self.label = label
        self.done = 0

    def advance(self, n: float = 1) -> None:
        self.done += n
        if self._progress is not None:
            self._progress.advance(self._task_id, n)

    def set_total(self, total: float | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, total=total)


@contextmanager
def progress(label: str, total: float | None = None) -> Iterator[_Step]:
    """A progress bar for a long step on a terminal; two log lines elsewhere."""
    if not interactive():
        log.info("%s…", label)
        step = _Step(None, None, label)
        yield step
        log.info("%s : terminé", label)
        return
    columns = [
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task_id = bar.add_task(label, total=total)
        yield _Step(bar, task_id, label)
    console.print(f"[green]✓[/] {label}")
