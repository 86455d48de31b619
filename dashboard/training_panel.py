"""The empty state: explain what is missing and offer to train the demo model, live."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cam_core.errors import AlreadyRunningError, CamLensError
from cam_core.locations import demo_run_dir


def _train_demo() -> None:
    bar = st.progress(0.0, text="Starting…")

    def report(message: str, fraction: float) -> None:
        bar.progress(min(1.0, max(0.0, fraction)), text=f"{message} ({fraction:.0%})")

    from cam_core.pipeline import run_demo

    with st.status(
        "Training the demo model (about two minutes on a laptop CPU)…", expanded=True
    ) as status:
        try:
            manifest = run_demo(demo_run_dir(), progress=report, console=False)
        except AlreadyRunningError:
            status.update(label="Another session is training right now", state="error")
            st.warning(
                "A training is already running (maybe in another tab). "
                "Reload this page in a minute."
            )
            return
        except CamLensError as exc:
            status.update(label="Training failed", state="error")
            st.error(str(exc))
            return
        status.update(label=f"Done: accuracy {manifest.metrics['accuracy']:.1%}", state="complete")
    st.rerun()


def render(problem: str, folder: Path) -> None:
    """Show why there is nothing to display, and the demo-training button for the default."""
    st.warning(problem)
    if folder == demo_run_dir() / "artifacts":
        st.markdown(
            "No demo model has been trained yet. The demo trains a small CNN on generated "
            "cartoon cats and dogs (whose ears are the only difference) entirely offline."
        )
        if st.button("Train the demo model", type="primary", key="setup_train"):
            _train_demo()
    else:
        st.info(
            "Pick another folder in the sidebar, or create one with "
            "`python -m cam_core analyze --model MODEL_DIR --out ARTIFACT_DIR`."
        )
