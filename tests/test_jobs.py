from __future__ import annotations

import threading

from cam_core.errors import DataSourceError
from cam_core.jobs import BackgroundJob
from cam_core.progress import ProgressFn


def test_progress_is_visible_while_running_and_one_run_at_a_time() -> None:
    job = BackgroundJob()
    reached = threading.Event()
    release = threading.Event()

    def work(progress: ProgressFn) -> None:
        progress("half way", 0.5)
        reached.set()
        release.wait(10)

    assert job.start(work)
    assert reached.wait(10)
    status = job.status()
    assert (status.state, status.message, status.fraction) == ("running", "half way", 0.5)
    assert not job.start(work)
    release.set()
    assert job.wait(10).state == "done"
    assert job.start(lambda progress: None)
    assert job.wait(10).state == "done"


def test_failures_are_reported_not_lost() -> None:
    job = BackgroundJob()

    def bad_data(progress: ProgressFn) -> None:
        raise DataSourceError("no images found in /x")

    job.start(bad_data)
    status = job.wait(10)
    assert (status.state, status.error, status.error_kind) == (
        "failed",
        "no images found in /x",
        "DataSourceError",
    )

    def bug(progress: ProgressFn) -> None:
        raise KeyError("oops")

    job.start(bug)
    status = job.wait(10)
    assert status.state == "failed" and status.error_kind == "KeyError"
    assert "unexpected error" in (status.error or "")
