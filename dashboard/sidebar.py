"""The sidebar shared by every page: which analysis, colour scale and overlay opacity."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cam_core.analysis.artifacts import find_artifact_folders
from cam_core.data.sources import TASKS
from cam_core.errors import CamLensError
from cam_core.locations import demo_run_dir, home, is_shared, shared_folder
from cam_core.methods import MethodRecord, primary_method
from cam_core.present.display import map_meaning, method_title
from cam_core.present.overlay import COLORSCALES
from dashboard import access, resources, review_panel, state, training_panel

OTHER = "Another folder…"


def _label(folder: Path) -> str:
    try:
        return str(folder.relative_to(home()))
    except ValueError:
        return str(folder)


def _first_existing(options: list[str]) -> str:
    """The first folder that holds an analysis, else the first (the demo, which the empty
    state offers to build)."""
    return next((o for o in options if (Path(o) / "manifest.json").is_file()), options[0])


def render() -> state.Context | str:
    """Draw the sidebar; returns the loaded context, or a message saying why there is none."""
    with st.sidebar:
        st.header("Analysis")
        demos = [str(demo_run_dir(task) / "artifacts") for task in TASKS]
        found = find_artifact_folders(home()) if is_shared(home()) else []
        options = [*demos, *(str(p) for p in found if str(p) not in demos)]
        options = [option for option in options if is_shared(option)]
        options.append(OTHER)
        chosen = st.session_state.get(state.CHOICE)
        if chosen not in options:
            # From a link: a folder outside the shared ones is refused below without being
            # looked at (not even whether it exists).
            linked = bool(chosen) and (
                not is_shared(str(chosen)) or (Path(str(chosen)) / "manifest.json").is_file()
            )
            if linked:
                st.session_state[state.CUSTOM_DIR] = str(chosen)
                st.session_state[state.CHOICE] = OTHER
            else:
                st.session_state[state.CHOICE] = _first_existing(options[:-1] or [OTHER])
        presenting = state.presenting()
        if presenting:  # no controls: the values the link or the session chose
            choice = str(st.session_state[state.CHOICE])
        else:
            choice = st.selectbox(
                "Artifact folder",
                options,
                key=state.CHOICE,
                format_func=lambda o: o if o == OTHER else _label(Path(o)),
                help="Folders under $CAM_LENS_HOME that hold an analysis (manifest.json). "
                "Only folders this server shares open ($CAM_LENS_ROOTS).",
            )
        if choice == OTHER:
            typed = (
                str(st.session_state.get(state.CUSTOM_DIR, ""))
                if presenting
                else st.text_input(
                    "Folder path", key=state.CUSTOM_DIR, placeholder="/path/to/artifacts"
                )
            )
            folder = Path(typed).expanduser() if typed else Path(demos[0])
        else:
            folder = Path(choice)
        st.session_state[state.ARTIFACTS_DIR] = str(folder)
        try:
            readable = shared_folder(folder)
        except CamLensError as exc:
            return str(exc)
        if state.OPACITY not in st.session_state:  # default here: the value is kept across pages
            st.session_state[state.OPACITY] = 0.5
        if not presenting:
            st.header("Display")
            st.selectbox("Colour scale", COLORSCALES, key=state.COLORSCALE)
            st.slider("Overlay opacity", 0.0, 1.0, step=0.05, key=state.OPACITY)
        try:
            version = resources.stamp(readable)
            art = resources.artifacts(str(readable), version)
        except CamLensError as exc:
            return str(exc)
        check = resources.map_check(str(folder), version)
        if check == "pending":
            st.caption("Checking the map files against their hashes in the background…")
        elif check is not None:
            return check
        training_panel.sidebar_progress()
        task = art.manifest.data.get("task")
        if task:
            st.caption(f"Task: **{task}** · {len(art.manifest.classes)} classes")
        if presenting:
            method = _presented_method(art.manifest.methods, readable)
            return state.Context(
                readable, version, art, method, state.colorscale(), state.opacity()
            )
        method = _method_selector(art.manifest.methods)
        for name, reason in art.manifest.unavailable.items():
            title = method_title(name, art.manifest.methods)
            st.caption(f"Not offered for this model: **{title}**, because {reason}.")
        st.header("Review")
        who = access.current()
        access.sidebar_status(who)
        if not who.signed_in:  # local mode: the name is typed; signed in, it is the identity
            if not st.session_state.get(state.REVIEWER):
                st.session_state[state.REVIEWER] = review_panel.default_reviewer()
            st.text_input(
                "Your name",
                key=state.REVIEWER,
                help="Recorded with every verdict you save (who and when).",
            )
    return state.Context(readable, version, art, method, state.colorscale(), state.opacity())


def _presented_method(methods: dict[str, MethodRecord], folder: Path) -> str:
    """Present mode's sidebar: what is shown, in words, and no control."""
    names = list(methods)
    if st.session_state.get(state.METHOD) not in names:
        st.session_state[state.METHOD] = primary_method(names)
    method = str(st.session_state[state.METHOD])
    record = methods[method]
    st.caption(f"Presenting **{_label(folder)}** · {record.title} · {map_meaning(record)}")
    return method


def _method_selector(methods: dict[str, MethodRecord]) -> str:
    """The explanation method every page shows, from those the analysis computed (the
    analysis's primary method first)."""
    names = list(methods)
    if st.session_state.get(state.METHOD) not in names:
        st.session_state[state.METHOD] = primary_method(names)
    st.header("Explanation")
    method = str(
        st.selectbox(
            "Method",
            names,
            key=state.METHOD,
            format_func=lambda n: methods[n].title,
            help="Maps of every class from the chosen method; below it, what its values mean.",
        )
    )
    record = methods[method]
    st.caption(f"Layer `{record.layer}` · {map_meaning(record)}")
    return method


def require() -> state.Context:
    """The page's context; when there is none, show the empty state and stop the page."""
    context = render()
    if isinstance(context, str):
        folder = Path(
            st.session_state.get(state.ARTIFACTS_DIR, demo_run_dir(TASKS[0]) / "artifacts")
        )
        training_panel.render(context, folder)
        st.stop()
    return context
