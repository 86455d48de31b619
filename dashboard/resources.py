"""Cached access to cam_core for every page: models in ``st.cache_resource``, tables, arrays,
images and figures in ``st.cache_data``. Pages never read files or the model directly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from cam_core.artifacts import Artifacts, read_artifacts
from cam_core.figures import class_map_figure, confidence_histogram, confusion_figure
from cam_core.images import load_image_file, square_resize
from cam_core.metrics import confusion_matrix
from cam_core.model_files import LoadedModel, ModelCard, load_model, read_card
from cam_core.overlay import encode_png, overlay
from cam_core.report import build_report


def stamp(folder: Path) -> float:
    """Changes whenever the analysis is rewritten (the manifest is written last)."""
    try:
        return (folder / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def model(model_dir: str, weights_sha256: str) -> LoadedModel:
    """One shared, read-only model per (folder, weights) for all sessions."""
    return load_model(Path(model_dir))


@st.cache_data(max_entries=4, show_spinner="Reading the analysis…")
def artifacts(folder: str, version: float) -> Artifacts:
    """The verified artifact folder; ``version`` (the manifest time) invalidates the cache."""
    return read_artifacts(Path(folder))


@st.cache_data(max_entries=4)
def model_card(model_dir: str, version: float) -> ModelCard:
    """The model card of the analysed model."""
    return read_card(Path(model_dir))


@st.cache_data(max_entries=20000, show_spinner=False)
def view_png(path: str, size: int) -> bytes:
    """The model-input view of a validation image, as PNG."""
    return encode_png(square_resize(load_image_file(Path(path)), size))


@st.cache_data(max_entries=20000, show_spinner=False)
def overlay_png(
    folder: str, version: float, row: int, class_index: int, colorscale: str, opacity: float
) -> bytes:
    """One class map of one validation image over the image, as PNG."""
    art = artifacts(folder, version)
    path = str(art.table.iloc[row]["path"])
    view = square_resize(load_image_file(Path(path)), art.manifest.image_size)
    cam = art.cams[row, class_index].astype(np.float32)
    return encode_png(overlay(view, cam, colorscale, opacity))


@st.cache_data(max_entries=16, show_spinner="Building the report…")
def report_html(folder: str, version: float, top_n: int, colorscale: str) -> str:
    """The self-contained HTML report (built by cam_core)."""
    art = artifacts(folder, version)
    try:
        card: ModelCard | None = model_card(art.manifest.model_dir, version)
    except Exception:  # noqa: BLE001 - the report still renders without the card
        card = None
    return build_report(art, card, top_n, colorscale)


@st.cache_data(max_entries=16, show_spinner=False)
def overview_figures(folder: str, version: float) -> tuple[go.Figure, go.Figure]:
    """The confusion matrix and the confidence histogram of an analysis."""
    art = artifacts(folder, version)
    matrix = confusion_matrix(art.table, list(art.manifest.classes))
    return confusion_figure(matrix, "click to open in the gallery"), confidence_histogram(art.table)


@st.cache_data(max_entries=512, show_spinner=False)
def class_map_fig(
    cam: np.ndarray,
    view_png_bytes: bytes,
    title: str,
    colorscale: str,
    opacity: float,
    zmin: float | None,
    zmax: float | None,
) -> go.Figure:
    """One class-map figure; reruns with the same inputs reuse it."""
    view = Image.open(io.BytesIO(view_png_bytes))
    return class_map_figure(cam, view, title, colorscale, opacity, zmin, zmax)
