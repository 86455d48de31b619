"""Long work (training the demo) in a background thread, with progress that any caller can read.

The dashboard starts the job and polls :meth:`BackgroundJob.status`; a user who leaves the page
or closes the tab does not stop the training.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from cam_core.errors import CamLensError
from cam_core.progress import ProgressFn

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
    """

    state: str = "idle"
    message: str = ""
    fraction: float = 0.0
    error: str | None = None
    error_kind: str | None = None


class BackgroundJob:
    """At most one run of some work at a time, in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = JobStatus()

    def start(self, work: Callable[[ProgressFn], object]) -> bool:
        """Start ``work(progress)`` unless a run is in progress; returns whether it started."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._status = JobStatus(state="running", message="starting")
            self._thread = threading.Thread(
                target=self._run, args=(work,), daemon=True, name="cam-lens-job"
            )
            self._thread.start()
        return True

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
            self._finish(JobStatus("failed", error=str(exc), error_kind=type(exc).__name__))
        except Exception as exc:
            log.exception("background job failed")
            self._finish(
                JobStatus("failed", error=f"unexpected error: {exc}", error_kind=type(exc).__name__)
            )
        else:
            self._finish(JobStatus("done", message="done", fraction=1.0))

    def _finish(self, status: JobStatus) -> None:
        with self._lock:
            self._status = status
