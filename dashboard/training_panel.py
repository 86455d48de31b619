"""The demo build: the empty state that offers it, and its live progress.

The build runs in a background job shared by every session of this server (a file lock also
stops other processes), so leaving the page does not stop it. ``make run`` names the demo
tasks to build in ``CAM_LENS_BUILD_DEMO``; the first page of the server starts that build
(once: every other session and reload sees the same job), and each task's pages open as soon
as its analysis is written, species first.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from cam_core.data.sources import TASKS
from cam_core.jobs import BackgroundJob
from cam_core.locations import demo_run_dir, home
from cam_core.progress import ProgressFn
from dashboard import state

BUILD_DEMO_ENV = "CAM_LENS_BUILD_DEMO"
"""Space-separated demo tasks to build when the server starts (set by ``make run``)."""

_DEMO_JOB = BackgroundJob()
_log = logging.getLogger("cam_lens.demo")


def demo_job() -> BackgroundJob:
    """The demo-training job of this server process, shared by every browser session."""
    return _DEMO_JOB


def _train(progress: ProgressFn, tasks: Sequence[str] = TASKS) -> object:
    from cam_core.analysis.demo import run_all_demos

    return run_all_demos(home() / "demo", progress=progress, console=False, tasks=tasks)


def _on_terminal(progress: ProgressFn) -> ProgressFn:
    """``progress`` that also prints a line on the server's terminal at each new stage and
    every 10%."""
    if not _log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  CAM Lens: %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
        _log.propagate = False
    last = {"stage": "", "tenth": -1}

    def report(message: str, fraction: float) -> None:
        progress(message, fraction)
        stage, tenth = message.split(" (")[0], int(fraction * 10)
        if stage != last["stage"] or tenth != last["tenth"]:
            last.update(stage=stage, tenth=tenth)
            _log.info("%s", demo_job().status().line())

    return report


def autostart() -> None:
    """Start the demo build that ``make run`` asked for, once per server."""
    tasks = [task for task in os.environ.get(BUILD_DEMO_ENV, "").split() if task in TASKS]
    if tasks and demo_job().start_once(lambda progress: _train(_on_terminal(progress), tasks)):
        _log.info("building the demo (%s) in the background", ", ".join(tasks))


def _built() -> int:
    return sum((demo_run_dir(task) / "artifacts" / "manifest.json").is_file() for task in TASKS)


@st.fragment(run_every=1.0)
def _live_progress() -> None:
    status = demo_job().status()
    if status.state != "running" or _built() != st.session_state.get(state.DEMO_BUILT, _built()):
        st.rerun()
    st.session_state[state.DEMO_BUILT] = _built()
    st.progress(status.fraction, text=status.line())


def sidebar_progress() -> None:
    """While the demo builds: its progress in the sidebar; the app reruns when a task's
    analysis appears or the build ends, so its pages open at once."""
    if demo_job().status().state == "running":
        st.session_state[state.DEMO_BUILT] = _built()
        with st.sidebar:
            st.caption("Building the demo in the background")
            _live_progress()


def render(problem: str, folder: Path) -> None:
    """Show why there is nothing to display, and the demo-training button for the default."""
    if folder not in {demo_run_dir(task) / "artifacts" for task in TASKS}:
        st.warning(problem)
        st.info(
            "Pick another folder in the sidebar, or create one with "
            "`python -m cam_core analyze --model MODEL_DIR --out ARTIFACT_DIR`."
        )
        return
    status = demo_job().status()
    if status.state == "running":
        with st.status(
            "Building the demo models, species and breed (a few minutes on a 2-core CPU)…",
            expanded=True,
            state="running",
        ):
            st.caption("You can leave this page; the build goes on.")
            _live_progress()
        return
    st.warning(problem)
    if status.state == "failed":
        if status.error_kind == "AlreadyRunningError":
            st.warning(f"A training is already running elsewhere: {status.error}")
        else:
            st.error(f"Training failed: {status.error}")
    st.markdown(
        "No demo model has been trained yet. The demo trains a small CNN on generated "
        "cartoon cats and dogs of six breeds, once for the species task (cat vs dog) and once "
        "for the breed task, entirely offline."
    )
    if st.button("Train the demo models", type="primary", key="setup_train"):
        demo_job().start(_train)
        st.rerun()
