"""Long work (training the demo) in a background thread, with progress that any caller can read.

The dashboard starts the job and polls :meth:`BackgroundJob.status`; a user who leaves the page
or closes the tab does not stop the training.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from cam_core.errors import CamLensError
from cam_core.progress import ProgressFn, time_left

__all__ = ["BackgroundJob", "JobStatus"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a job.

    Attributes:
        state: ``"idle"``, ``"running"``, ``"done"`` or ``"failed"``.
        message: the latest progress message.
        fraction: share of the work done, 0 to 1.
        error: the one-line error of a failed job.
        error_kind: the error's class name (e.g. ``"AlreadyRunningError"``).
        started: ``time.monotonic()`` when the run started (0 before any run).
    """

    state: str = "idle"
    message: str = ""
    fraction: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    started: float = 0.0

    def line(self) -> str:
        """``"species demo: training stage 1: epoch 3/8 (12%, about 3 min left)"``; empty
        before any run."""
        if not self.message:
            return ""
        elapsed = time.monotonic() - self.started if self.started else 0.0
        left = time_left(elapsed, self.fraction, 1.0) if self.fraction >= 0.02 else ""
        return f"{self.message} ({self.fraction:.0%}{left})"


class BackgroundJob:
    """At most one run of some work at a time, in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = JobStatus()
        self._ever_started = False

    def start(self, work: Callable[[ProgressFn], object]) -> bool:
        """Start ``work(progress)`` unless a run is in progress; returns whether it started."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._status = JobStatus("running", "starting", started=time.monotonic())
            self._ever_started = True
            self._thread = threading.Thread(
                target=self._run, args=(work,), daemon=True, name="cam-lens-job"
            )
            self._thread.start()
        return True

    def start_once(self, work: Callable[[ProgressFn], object]) -> bool:
        """Start ``work`` unless this job has ever run (e.g. the build that ``make run`` asks
        for: every session and reload of the server sees that one run, never a second)."""
        with self._lock:
            if self._ever_started:
                return False
        return self.start(work)

    def status(self) -> JobStatus:
        """The current snapshot (safe to call from any thread)."""
        with self._lock:
            return self._status

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the current run ends (or ``timeout`` seconds); returns the snapshot."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def _report(self, message: str, fraction: float) -> None:
        with self._lock:
            self._status = replace(
                self._status, message=message, fraction=min(1.0, max(0.0, fraction))
            )

    def _run(self, work: Callable[[ProgressFn], object]) -> None:
        try:
            work(self._report)
        except CamLensError as exc:
            self._finish("failed", str(exc), type(exc).__name__)
        except Exception as exc:
            log.exception("background job failed")
            self._finish("failed", f"unexpected error: {exc}", type(exc).__name__)
        else:
            self._finish("done")

    def _finish(self, state: str, error: str | None = None, kind: str | None = None) -> None:
        with self._lock:
            done = state == "done"
            self._status = JobStatus(
                state,
                "done" if done else self._status.message,
                1.0 if done else self._status.fraction,
                error,
                kind,
                self._status.started,
            )
