"""The empty state: explain what is missing and offer to train the demo model, live.

Training runs in a background job shared by every session of this server (a file lock also
stops other processes), so leaving the page does not stop it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cam_core.data.sources import TASKS
from cam_core.jobs import BackgroundJob
from cam_core.locations import demo_run_dir, home
from cam_core.progress import ProgressFn

_DEMO_JOB = BackgroundJob()


def demo_job() -> BackgroundJob:
    """The demo-training job of this server process, shared by every browser session."""
    return _DEMO_JOB


def _train(progress: ProgressFn) -> object:
    from cam_core.analysis.demo import run_all_demos

    return run_all_demos(home() / "demo", progress=progress, console=False)


@st.fragment(run_every=1.0)
def _live_progress() -> None:
    status = demo_job().status()
    if status.state != "running":
        st.rerun()
    st.progress(status.fraction, text=f"{status.message} ({status.fraction:.0%})")


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
            "Training the demo models, species and breed (about five minutes on a 2-core CPU)…",
            expanded=True,
        ):
            st.caption("You can leave this page; the training goes on.")
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
