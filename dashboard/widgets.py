"""Widget groups used by more than one page."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from cam_core.methods import MethodRecord
from cam_core.present.display import map_title, missing_map_words
from cam_core.present.figures import figure_html
from cam_core.present.overlay import encode_png
from cam_core.present.tables import DisplayTable
from dashboard import resources, state


def class_map_grid(
    maps: np.ndarray,
    view: Image.Image,
    classes: Sequence[str],
    colorscale: str,
    opacity: float,
    shared_range: bool,
    key: str,
    record: MethodRecord,
    shown: Sequence[int] | None = None,
    every_class_method: str | None = None,
) -> None:
    """One interactive heatmap per class (up to three per row), each downloadable as HTML.

    A class outside the method's class budget (its map all NaN) gets a note instead, and a
    button that switches the sidebar to ``every_class_method`` where there is one.

    Args:
        maps: ``(K, h, w)`` maps of one image.
        view: the model-input image.
        classes: class names in map order.
        colorscale, opacity: display settings from the sidebar.
        shared_range: one colour range for all classes (else each map's own).
        key: unique widget-key prefix.
        record: the method that made the maps (each title says what the values mean).
        shown: indices of the classes to draw (default: all); the colour range still spans
            every class.
        every_class_method: a method of the analysis with maps of every class (exact CAM).
    """
    held = ~np.isnan(maps).all(axis=(1, 2))
    zmin, zmax = (None, None)
    if shared_range and held.any():
        zmin, zmax = float(np.nanmin(maps[held])), float(np.nanmax(maps[held]))
    view_png = encode_png(view)
    drawn = list(shown) if shown is not None else list(range(len(classes)))
    columns = st.columns(max(1, min(3, len(drawn))))
    for slot, k in enumerate(drawn):
        name = classes[k]
        if not held[k]:
            with columns[slot % len(columns)]:
                st.info(missing_map_words(name, record))
                if every_class_method is not None:
                    st.button(
                        "Show exact CAM",
                        key=f"{key}_cam_{k}",
                        on_click=state.choose_method,
                        args=(every_class_method,),
                    )
            continue
        bias = record.bias[k] if record.bias is not None else None
        title = map_title(name, float(maps[k].mean()), record, bias)
        figure = resources.class_map_fig(
            np.ascontiguousarray(maps[k]),
            view_png,
            title,
            colorscale,
            opacity,
            zmin,
            zmax,
            record.placement,
        )
        with columns[slot % len(columns)]:
            st.plotly_chart(figure, key=f"{key}_fig_{k}")
            st.download_button(
                f"{name} map (HTML)",
                functools.partial(figure_html, figure),  # built only when clicked
                file_name=f"map_{name}.html",
                mime="text/html",
                key=f"{key}_dl_{k}",
            )


LARGE_TABLE = 5000
"""Above this many images the picker is a row number and a file-name search, not a list."""


def _row_of(table: pd.DataFrame, file_name: str) -> int | None:
    """The first row whose file name is ``file_name`` (vectorised: fast on 100k rows)."""
    names = table["path"].astype(str).str.rsplit("/", n=1).str[-1]
    hits = np.flatnonzero((names == file_name.strip()).to_numpy())
    return int(hits[0]) if len(hits) else None


def image_picker(table: pd.DataFrame, key: str) -> int:
    """The validation image to show; returns its row position.

    A select box over every image, or, for more than :data:`LARGE_TABLE` images (a list that
    long would be sent to the browser on every rerun), a row number and a file-name search.
    A page that sends the user here (a gallery or error card) sets
    :data:`dashboard.state.SELECTED_ROW`, and a shared link :data:`dashboard.state.LINK_IMAGE`
    (a file name), which this picker takes once.
    """
    n = len(table)
    if state.SELECTED_ROW in st.session_state:
        st.session_state[key] = min(int(st.session_state.pop(state.SELECTED_ROW)), n - 1)
    linked = st.session_state.pop(state.LINK_IMAGE, None)
    if linked:
        row = _row_of(table, str(linked))
        if row is not None:
            st.session_state[key] = row
        else:
            st.warning(f"The linked image {linked} is not in this analysis.")
    if n > LARGE_TABLE:

        def find() -> None:
            wanted = str(st.session_state.get(f"{key}_find", "")).strip()
            row = _row_of(table, wanted) if wanted else None
            if row is not None:
                st.session_state[key] = row

        cols = st.columns([1, 2])
        row = int(cols[0].number_input(f"Validation image (row, of {n})", 0, n - 1, key=key))
        cols[1].text_input("Go to a file name", key=f"{key}_find", on_change=find)
        record = table.iloc[row]
        st.caption(
            f"{str(record['path']).rsplit('/', 1)[-1]} — {record['label']} → {record['pred']}"
        )
        return row
    names = [
        f"{i}: {str(p).rsplit('/', 1)[-1]} — {t} → {pr}"
        for i, (p, t, pr) in enumerate(
            zip(table["path"], table["label"], table["pred"], strict=True)
        )
    ]
    return int(st.selectbox("Validation image", range(n), format_func=names.__getitem__, key=key))


def csv_download(
    frame: pd.DataFrame | Callable[[], pd.DataFrame], label: str, file_name: str, key: str
) -> None:
    """A download button for a table as CSV (for spreadsheets and stakeholders); the CSV (and
    the table, when given as a function) is built only when the button is clicked."""

    def build() -> str:
        table = frame() if callable(frame) else frame
        return table.to_csv(index=False)

    st.download_button(label, build, file_name=file_name, mime="text/csv", key=key)


def display_table(display: DisplayTable, key: str) -> None:
    """A table from the presentation layer: the same headings and cell texts as the report."""
    st.dataframe(
        display.text(),
        column_config={
            column.key: st.column_config.TextColumn(column.label, help=column.help or None)
            for column in display.columns
        },
        key=key,
    )


MANY_CLASSES = 6
"""Above this many classes, pages draw the most probable ones unless the user picks others."""


def classes_to_show(
    row: pd.Series, classes: Sequence[str], key: str, default_n: int = MANY_CLASSES
) -> list[int]:
    """All classes when there are few; else a multiselect defaulting to the most probable."""
    if len(classes) <= MANY_CLASSES:
        return list(range(len(classes)))
    probs = np.array([float(row[f"prob_{c}"]) for c in classes])
    top = [classes[k] for k in np.argsort(-probs)[:default_n]]
    for must in (str(row["label"]), str(row["pred"])):
        if must not in top:
            top.append(must)
    picked = st.multiselect(
        f"Classes shown ({len(classes)} in all)",
        classes,
        default=top,
        key=f"{key}_{row.name}",
        help="The most probable classes, the true class and the prediction; add any other.",
    )
    return [classes.index(c) for c in picked]
