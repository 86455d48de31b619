"""Session-state keys shared by several pages, and the selected analysis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from cam_core.artifacts import Artifacts

ARTIFACTS_DIR = "shared_artifacts_dir"
CHOICE = "shared_choice"
CUSTOM_DIR = "shared_custom_dir"
METHOD = "shared_method"
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
HEAT_CLASS = "heat_a"
LINK_APPLIED = "link_applied"
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
    def method_info(self) -> dict[str, Any]:
        """What the manifest says of the chosen method (title, layer, additive, …)."""
        return dict(self.art.manifest.methods[self.method])


def colorscale() -> str:
    return str(st.session_state.get(COLORSCALE, "Jet"))


def opacity() -> float:
    return float(st.session_state.get(OPACITY, 0.5))
