"""Session-state keys shared by several pages, and the selected analysis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from cam_core.artifacts import Artifacts

ARTIFACTS_DIR = "shared_artifacts_dir"
METHOD = "shared_method"
COLORSCALE = "shared_colorscale"
OPACITY = "shared_opacity"
SELECTED_ROW = "shared_selected_row"
GALLERY_TRUE = "gal_true"
GALLERY_PRED = "gal_pred"
GALLERY_CORRECT = "gal_correct"
GALLERY_PAGE = "gal_page"


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
