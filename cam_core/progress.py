"""Progress reporting: the callback contract shared by training, analysis and the dashboard,
and console progress that stays readable when the output is not a terminal."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType

from tqdm import tqdm

__all__ = [
    "ConsoleProgress",
    "ProgressFn",
    "Stopwatch",
    "interactive",
    "scaled_progress",
    "time_left",
]

ProgressFn = Callable[[str, float], None]
"""Called with a short message and the fraction of the whole job done (0 to 1)."""

log = logging.getLogger(__name__)

LOG_EVERY = 0.1
"""Without a terminal, one log line per this share of a loop."""


def scaled_progress(progress: ProgressFn | None, start: float, end: float) -> ProgressFn | None:
    """A callback for one part of a job that reports ``start..end`` of the whole to ``progress``."""
    if progress is None:
        return None
    report = progress
    return lambda message, fraction: report(message, start + (end - start) * fraction)


def interactive() -> bool:
    """Whether stderr is a terminal (live progress bars) or a file or pipe (log lines)."""
    return sys.stderr.isatty()


def time_left(elapsed: float, done: float, total: float) -> str:
    """``", about 2 min left"`` from the pace so far; empty before anything is done and at
    the end."""
    if done <= 0 or done >= total:
        return ""
    seconds = elapsed / done * (total - done)
    if seconds < 90:
        return f", about {max(1, round(seconds))} s left"
    return f", about {round(seconds / 60)} min left"


class ConsoleProgress:
    """Progress of one loop: a live tqdm bar on a terminal, else a log line per 10% with the
    time left.

    A redrawn bar written to a file is one line per redraw (100 KB for a two-minute run);
    a log line per tenth of the loop keeps such logs readable.
    """

    def __init__(self, what: str, total: int, unit: str) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.done = 0
        self._logged = 0
        self._start = time.perf_counter()
        self._bar = tqdm(total=total, desc=what, unit=unit, leave=False) if interactive() else None

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        tenth = int(self.done / max(1, self.total) / LOG_EVERY)
        if tenth > self._logged:
            self._logged = tenth
            log.info(
                "%s: %d/%d %s (%d%%%s)",
                self.what,
                self.done,
                self.total,
                self.unit,
                100 * self.done // max(1, self.total),
                time_left(time.perf_counter() - self._start, self.done, self.total),
            )

    def close(self) -> None:
        """End the bar (no-op without a terminal)."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ConsoleProgress:
        return self

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        self.close()


class Stopwatch:
    """Wall time of named stages of a job, in the order they ran (a stage run twice adds up)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            log.debug("%s: %.1f s", name, elapsed)
