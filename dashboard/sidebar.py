"""The sidebar shared by every page: which analysis, colour scale and overlay opacity."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cam_core.artifacts import find_artifact_folders
from cam_core.errors import CamLensError
from cam_core.locations import demo_run_dir, home
from cam_core.overlay import COLORSCALES
from dashboard import resources, state

OTHER = "Another folder…"


def _label(folder: Path) -> str:
    try:
        return str(folder.relative_to(home()))
    except ValueError:
        return str(folder)


def render() -> state.Context | str:
    """Draw the sidebar; returns the loaded context, or a message saying why there is none."""
    with st.sidebar:
        st.header("Analysis")
        found = find_artifact_folders(home())
        default = demo_run_dir() / "artifacts"
        options = [str(p) for p in found]
        if str(default) not in options:
            options.insert(0, str(default))
        options.append(OTHER)
        if st.session_state.get("shared_choice") not in options:
            st.session_state["shared_choice"] = options[0]
        choice = st.selectbox(
            "Artifact folder",
            options,
            key="shared_choice",
            format_func=lambda o: o if o == OTHER else _label(Path(o)),
            help="Folders under $CAM_LENS_HOME that hold an analysis (manifest.json).",
        )
        if choice == OTHER:
            typed = st.text_input(
                "Folder path", key="shared_custom_dir", placeholder="/path/to/artifacts"
            )
            folder = Path(typed).expanduser() if typed else default
        else:
            folder = Path(choice)
        st.session_state[state.ARTIFACTS_DIR] = str(folder)
        st.header("Display")
        st.selectbox("Colour scale", COLORSCALES, key=state.COLORSCALE)
        st.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key=state.OPACITY)
    try:
        version = resources.stamp(folder)
        art = resources.artifacts(str(folder), version)
    except CamLensError as exc:
        return str(exc)
    return state.Context(folder, version, art, state.colorscale(), state.opacity())


def require() -> state.Context:
    """The page's context; when there is none, show the empty state and stop the page."""
    from dashboard import training_panel

    context = render()
    if isinstance(context, str):
        folder = Path(st.session_state.get(state.ARTIFACTS_DIR, demo_run_dir() / "artifacts"))
        training_panel.render(context, folder)
        st.stop()
    return context
