"""Console progress for long-running commands: numbered steps with timings."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Steps:
    """Print ``[i/n] title`` when a step starts and its duration when it ends.

    Durations are kept in :attr:`seconds` (title -> seconds) for reports.
    """

    def __init__(self, total: int, stream: TextIO = sys.stdout) -> None:
        self.total = total
        self.stream = stream
        self.seconds: dict[str, float] = {}
        #: The title of the step running now (``None`` between steps).
        self.current: str | None = None
        self._index = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Run the body as the next step; a failure is reported with the step's name and re-raised."""
        self._index += 1
        self.say(f"[{self._index}/{self.total}] {title} ...")
        started = time.perf_counter()
        self.current = title
        try:
            yield
        except BaseException:
            self.say(f"[{self._index}/{self.total}] {title} FAILED after {time.perf_counter() - started:.1f} s")
            raise
        self.current = None
        elapsed = time.perf_counter() - started
        self.seconds[title] = round(elapsed, 2)
        self.say(f"[{self._index}/{self.total}] {title} done in {elapsed:.1f} s")

    def say(self, line: str) -> None:
        """Print one line immediately (progress must show even when piped)."""
        print(line, file=self.stream, flush=True)
