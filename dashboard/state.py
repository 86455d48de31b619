"""Session-state keys shared by several pages, and the selected analysis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from cam_core.analysis.artifacts import Artifacts
from cam_core.methods import MethodRecord
from cam_core.review.selection import SORT_ORDERS, GalleryFilter, rows_from_text, rows_to_text

ARTIFACTS_DIR = "shared_artifacts_dir"
CHOICE = "shared_choice"
CUSTOM_DIR = "shared_custom_dir"
METHOD = "shared_method"
DEMO_BUILT = "demo_built"
"""How many demo tasks had an analysis when the demo build's progress was last drawn."""
COLORSCALE = "shared_colorscale"
OPACITY = "shared_opacity"
SELECTED_ROW = "shared_selected_row"
GALLERY_TRUE = "gal_true"
GALLERY_PRED = "gal_pred"
GALLERY_CORRECT = "gal_correct"
GALLERY_PAGE = "gal_page"
GALLERY_CONFIDENCE = "gal_conf"
GALLERY_SORT = "gal_sort"
GALLERY_VERDICTS = "gal_verdicts"
GALLERY_TAG = "gal_tag"
GALLERY_SUSPECTED = "gal_suspected"
REVIEWER = "shared_reviewer"
GALLERY_BREEDS = "gal_breeds"
GALLERY_UNFAMILIAR = "gal_unfamiliar"
GALLERY_DUPLICATES = "gal_duplicates"
GALLERY_ROWS = "gal_rows"
GALLERY_SLICE = "gal_slice"
HEAT_CLASS = "heat_a"
CALIBRATION_THRESHOLD = "cal_threshold"
EMBED_COLOUR = "emb_colour"
SHORTCUT_PICK = "sc_pick"
LINK_APPLIED = "link_applied"
PRESENT = "shared_present"
LINK_IMAGE = "link_image"

SIDEBAR_WIDGETS = (CHOICE, CUSTOM_DIR, METHOD, COLORSCALE, OPACITY, REVIEWER)
"""Sidebar widgets whose values must survive a page switch."""


def keep_sidebar_choices() -> None:
    """Re-assign the sidebar's widget values before any page runs.

    Streamlit forgets a widget's value when a page switch runs a script in which that widget
    has not been drawn yet; writing the value back marks it as the user's, so the chosen
    analysis and method follow the user from page to page.
    """
    for key in SIDEBAR_WIDGETS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


@dataclass(frozen=True)
class Context:
    """What every page works on: the loaded analysis and the display settings."""

    folder: Path
    version: float
    art: Artifacts
    method: str
    colorscale: str
    opacity: float

    @property
    def key(self) -> str:
        """The folder as the string that cached functions take."""
        return str(self.folder)

    @property
    def maps(self) -> np.ndarray:
        """The chosen method's maps ``(N, K, h, w)`` (memory-mapped float16)."""
        return self.art.maps_of(self.method)

    @property
    def every_class_method(self) -> str | None:
        """Another method of the analysis whose maps hold every class (for classes outside
        the chosen method's class budget), or ``None``."""
        return next(
            (
                name
                for name, record in self.art.manifest.methods.items()
                if not record.classes_file and name != self.method
            ),
            None,
        )

    @property
    def record(self) -> MethodRecord:
        """What the analysis recorded of the chosen method (title, layer, additive, …)."""
        return self.art.manifest.methods[self.method]


def choose_method(name: str) -> None:
    """Switch the sidebar's method (a button callback: runs before the widget is drawn)."""
    st.session_state[METHOD] = name


def put_gallery_filter(flt: GalleryFilter) -> None:
    """Set the Gallery's widgets to show exactly what ``flt`` selects, from its first page."""
    st.session_state[GALLERY_CONFIDENCE] = flt.confidence
    st.session_state[GALLERY_CORRECT] = flt.correctness
    st.session_state[GALLERY_TRUE] = list(flt.true_classes)
    st.session_state[GALLERY_PRED] = list(flt.pred_classes)
    st.session_state[GALLERY_SORT] = flt.sort_name
    st.session_state[GALLERY_VERDICTS] = list(flt.verdicts)
    st.session_state[GALLERY_TAG] = flt.tag
    st.session_state[GALLERY_SUSPECTED] = flt.suspected_only
    st.session_state[GALLERY_BREEDS] = list(flt.breeds)
    st.session_state[GALLERY_UNFAMILIAR] = flt.unfamiliar_only
    st.session_state[GALLERY_DUPLICATES] = flt.duplicates_only
    st.session_state[GALLERY_ROWS] = rows_to_text(flt.rows)
    st.session_state[GALLERY_SLICE] = flt.slice
    st.session_state[GALLERY_PAGE] = 1


def gallery_filter() -> GalleryFilter:
    """What the Gallery's widgets select now (defaults for widgets not drawn yet)."""
    default = GalleryFilter()
    get = st.session_state.get
    sort_by, ascending = SORT_ORDERS.get(
        str(get(GALLERY_SORT, default.sort_name)), (default.sort_by, default.ascending)
    )
    low, high = get(GALLERY_CONFIDENCE, default.confidence)
    return GalleryFilter(
        confidence=(float(low), float(high)),
        correctness=str(get(GALLERY_CORRECT, default.correctness)),
        true_classes=tuple(get(GALLERY_TRUE, ())),
        pred_classes=tuple(get(GALLERY_PRED, ())),
        sort_by=sort_by,
        ascending=ascending,
        verdicts=tuple(get(GALLERY_VERDICTS, ())),
        tag=str(get(GALLERY_TAG, "")).strip(),
        suspected_only=bool(get(GALLERY_SUSPECTED, False)),
        breeds=tuple(get(GALLERY_BREEDS, ())),
        unfamiliar_only=bool(get(GALLERY_UNFAMILIAR, False)),
        duplicates_only=bool(get(GALLERY_DUPLICATES, False)),
        rows=rows_from_text(str(get(GALLERY_ROWS, ""))),
        slice=tuple(get(GALLERY_SLICE, ()) or ()),
    )


def presenting() -> bool:
    """Present mode (``?present=1``): no sidebar controls and no editing widgets, for
    screen sharing."""
    return bool(st.session_state.get(PRESENT, False))


def colorscale() -> str:
    return str(st.session_state.get(COLORSCALE, "Jet"))


def opacity() -> float:
    return float(st.session_state.get(OPACITY, 0.5))
