from __future__ import annotations

import re
import threading
import time

from cam_core.errors import DataSourceError
from cam_core.jobs import BackgroundJob, JobStatus
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


def test_start_once_runs_a_job_only_the_first_time_ever() -> None:
    job = BackgroundJob()
    runs: list[int] = []
    assert job.start_once(lambda progress: runs.append(1))
    assert job.wait(10).state == "done"
    assert not job.start_once(lambda progress: runs.append(2))  # a reload, another session
    assert runs == [1]
    assert job.start(lambda progress: runs.append(3))  # the button still retrains on request
    job.wait(10)
    assert runs == [1, 3]


def test_the_status_line_says_stage_share_and_time_left() -> None:
    job = BackgroundJob()
    reached = threading.Event()
    release = threading.Event()

    def work(progress: ProgressFn) -> None:
        time.sleep(0.2)
        progress("species demo: training stage 1: epoch 2/8", 0.25)
        reached.set()
        release.wait(10)

    job.start(work)
    assert reached.wait(10)
    line = job.status().line()
    found = re.fullmatch(
        r"species demo: training stage 1: epoch 2/8 \(25%, about (\d+) s left\)", line
    )
    assert found and 1 <= int(found.group(1)) <= 5  # 0.2 s for a quarter: about 0.6 s left
    release.set()
    done = job.wait(10)
    assert (done.state, done.line()) == ("done", "done (100%)")
    assert JobStatus().line() == ""
