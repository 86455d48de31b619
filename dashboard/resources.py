"""Cached access to cam_core for every page: models and analyses in ``st.cache_resource`` (one
shared object per version: the table is read and the file hashes are checked once, and maps
stay memory-mapped instead of being copied into every session), derived tables, images and
figures in ``st.cache_data``. Pages never read files or the model directly."""

from __future__ import annotations

import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from cam_core.analysis.artifacts import EMBEDDING_FILE, Artifacts, read_artifacts, verify_maps
from cam_core.analysis.findings import FamiliarGround
from cam_core.analysis.reliance import Reliance, reliance_of
from cam_core.errors import CamLensError, MethodError
from cam_core.evaluation.faithfulness import (
    PerturbationCurves,
    perturbation_curves,
    perturbation_frames,
)
from cam_core.evaluation.metrics import confusion_matrix
from cam_core.intake.images import (
    from_model_tensor,
    load_image_file,
    square_resize,
    to_model_tensor,
)
from cam_core.locations import shared_folder
from cam_core.methods import get_method, layer_readers
from cam_core.methods.placement import RECEPTIVE_FIELD
from cam_core.methods.tokens import candidate_layers, placement_of
from cam_core.modelling.model_files import LoadedModel, ModelCard, load_model, read_card
from cam_core.present.figures import (
    class_map_figure,
    confidence_histogram,
    confusion_figure,
    embedding_figure,
)
from cam_core.present.overlay import encode_png, overlay
from cam_core.present.report import build_report
from cam_core.present.summaries import breed_table
from cam_core.review.label_issues import suspected_label_errors
from cam_core.review.reviews import ReviewStore


def stamp(folder: Path) -> float:
    """Changes whenever the analysis is rewritten (the manifest is written last)."""
    try:
        return (folder / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0


def model(model_dir: str, weights_sha256: str) -> LoadedModel:
    """One shared, read-only model per (folder, weights) for all sessions. The folder is
    checked on every call, before the cache (a cached model must not outlive the rule).

    Raises:
        FolderNotSharedError: the analysis points to a model folder this server does not
            share (nothing is read from it).
        ModelFileError: a missing or damaged model folder.
    """
    return _model(str(shared_folder(model_dir)), weights_sha256)


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _model(model_dir: str, weights_sha256: str) -> LoadedModel:
    return load_model(Path(model_dir))


@st.cache_resource(max_entries=4, show_spinner="Reading the analysis…")
def artifacts(folder: str, version: float) -> Artifacts:
    """The artifact folder, shared read-only by every session (never modify it); ``version``
    (the manifest time) makes a rewritten analysis a new entry.

    The table's hash is checked here; the maps' hashes (gigabytes for big analyses) are checked
    once per version in the background, see :func:`map_check`.
    """
    art = read_artifacts(Path(folder), verify_maps=False)
    with _CHECKS_LOCK:
        _CHECKS[(folder, version)] = _CHECKER.submit(verify_maps, Path(folder), art.manifest)
    return art


_CHECKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cam-lens-hash-check")
_CHECKS: dict[tuple[str, float], Future[None]] = {}
_CHECKS_LOCK = threading.Lock()


def map_check(folder: str, version: float) -> str | None:
    """``"pending"`` while the map files' hashes are being checked, an error message when one
    does not match, ``None`` once they all do."""
    with _CHECKS_LOCK:
        future = _CHECKS.get((folder, version))
    if future is None:
        return None
    if not future.done():
        return "pending"
    error = future.exception()
    return str(error) if error is not None else None


@st.cache_resource(max_entries=4, show_spinner=False)
def familiar_ground(folder: str, version: float) -> FamiliarGround | str:
    """The analysis's familiarity and map, rebuilt for new images once per version and shared;
    a one-sentence reason where the analysis has none."""
    try:
        return FamiliarGround(artifacts(folder, version))
    except CamLensError as exc:
        return str(exc)


@st.cache_resource(max_entries=4, show_spinner=False)
def reliance(folder: str, version: float) -> Reliance | str:
    """The analysis's shortcut search and weak slices (shared, never modified), or why there
    are none."""
    try:
        return reliance_of(artifacts(folder, version))
    except CamLensError as exc:
        return str(exc)


def model_card(model_dir: str, version: float) -> ModelCard:
    """The model card of the analysed model (only from a folder this server shares, checked
    before the cache)."""
    return _model_card(str(shared_folder(model_dir)), version)


@st.cache_data(max_entries=4)
def _model_card(model_dir: str, version: float) -> ModelCard:
    return read_card(Path(model_dir))


@st.cache_data(max_entries=20000, show_spinner=False)
def view_png(path: str, size: int) -> bytes:
    """The model-input view of a validation image, as PNG."""
    return encode_png(square_resize(load_image_file(Path(path)), size))


@st.cache_data(max_entries=20000, show_spinner=False)
def overlay_png(
    folder: str,
    version: float,
    method: str,
    row: int,
    class_index: int,
    colorscale: str,
    opacity: float,
) -> bytes:
    """One method's map of one class of one validation image over the image, as PNG."""
    art = artifacts(folder, version)
    path = str(art.table.iloc[row]["path"])
    view = square_resize(load_image_file(Path(path)), art.manifest.image_size)
    cam = art.image_maps(method, row)[class_index]
    placement = art.manifest.methods[method].placement
    return encode_png(overlay(view, cam, colorscale, opacity, placement=placement))


@st.cache_data(max_entries=16, show_spinner=False)
def layer_candidates(folder: str, version: float) -> tuple[str, tuple[str, ...]]:
    """The method and the candidate layers of the Compare methods page's layers view: those
    ``--layer auto`` scored, else the model's candidates (with the first gradient method).

    Raises:
        CamLensError: the model cannot be loaded, or no gradient method applies to it.
    """
    art = artifacts(folder, version)
    choice = art.manifest.layer_choice
    if choice is not None and choice.candidates:
        return choice.method, tuple(c.layer for c in choice.candidates)
    loaded = model(art.manifest.model_dir, art.manifest.model_sha256)
    readers = layer_readers(loaded.net)
    if not readers:
        raise MethodError("no gradient method applies to this model; its layers cannot be compared")
    return readers[0], tuple(candidate_layers(loaded.net, art.manifest.image_size))


@st.cache_data(max_entries=512, show_spinner="Computing the map at that layer…")
def layer_overlay_png(
    folder: str,
    version: float,
    method: str,
    row: int,
    class_index: int,
    layer: str,
    colorscale: str,
    opacity: float,
) -> tuple[bytes, tuple[int, int]]:
    """One validation image's map of one class at ``layer`` (computed now) over the image, as
    PNG, and the map's grid."""
    art = artifacts(folder, version)
    manifest = art.manifest
    loaded = model(manifest.model_dir, manifest.model_sha256)
    image = load_image_file(Path(str(art.table.iloc[row]["path"])))
    tensor = to_model_tensor(image, manifest.image_size, loaded.card.mean, loaded.card.std)
    slots = torch.tensor([[class_index]], dtype=torch.int64)
    single = get_method(method).explain(loaded.net, tensor[None], layer, slots)[0, 0].numpy()
    view = square_resize(image, manifest.image_size)
    picture = overlay(view, single, colorscale, opacity, placement=placement_of(loaded.net))
    return encode_png(picture), (int(single.shape[0]), int(single.shape[1]))


@st.cache_data(max_entries=16, show_spinner="Building the report…")
def report_html(
    folder: str,
    version: float,
    top_n: int,
    colorscale: str,
    method: str,
    reviewed: pd.DataFrame | None = None,
    verdicts: dict[str, int] | None = None,
) -> str:
    """The self-contained HTML report (built by cam_core), with the current verdicts."""
    art = artifacts(folder, version)
    try:
        card: ModelCard | None = model_card(art.manifest.model_dir, version)
    except CamLensError:  # the report still renders without the card
        card = None
    return build_report(art, card, top_n, colorscale, method, reviewed, verdicts)


@st.cache_resource(max_entries=8, show_spinner=False)
def review_store(folder: str, model_sha256: str) -> ReviewStore:
    """The verdict store of an analysis, shared by every session (SQLite serialises writers)."""
    return ReviewStore.beside(Path(folder), model_sha256)


@st.cache_data(max_entries=4, show_spinner="Ranking suspected label errors…")
def label_issues(folder: str, version: float) -> pd.DataFrame:
    """Suspected label errors (cleanlab) of the analysis: rank and label quality per row."""
    art = artifacts(folder, version)
    return suspected_label_errors(art.table, art.manifest.classes)


@st.cache_data(max_entries=64, show_spinner="Deleting and inserting pixels…")
def perturbation_view(
    folder: str, version: float, method: str, row: int, steps: int
) -> tuple[PerturbationCurves, list[bytes], list[bytes]]:
    """One image's deletion/insertion curves for its true class, and each step's images (PNG)."""
    art = artifacts(folder, version)
    manifest = art.manifest
    loaded = model(manifest.model_dir, manifest.model_sha256)
    record = art.table.iloc[row]
    target = list(manifest.classes).index(str(record["label"]))
    image = to_model_tensor(
        load_image_file(Path(str(record["path"]))),
        manifest.image_size,
        loaded.card.mean,
        loaded.card.std,
    )
    single = art.image_maps(method, row)[target]
    placement = manifest.methods[method].placement
    curves = perturbation_curves(
        loaded.net, image[None], single[None], np.array([target]), steps, placement=placement
    )
    deleted, inserted = perturbation_frames(image, single, steps, placement)
    card = loaded.card

    def pngs(frames: list[torch.Tensor]) -> list[bytes]:
        return [encode_png(from_model_tensor(f, card.mean, card.std)) for f in frames]

    return curves, pngs(deleted), pngs(inserted)


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
    placement: str = RECEPTIVE_FIELD,
) -> go.Figure:
    """One class-map figure; reruns with the same inputs reuse it."""
    view = Image.open(io.BytesIO(view_png_bytes))
    return class_map_figure(cam, view, title, colorscale, opacity, zmin, zmax, placement=placement)


@st.cache_resource(max_entries=8, show_spinner="Drawing the map…")
def embedding_fig(
    folder: str,
    version: float,
    column: str,
    label: str,
    marks: tuple[tuple[float, float, str], ...] = (),
) -> go.Figure:
    """The analysis's 2-D map coloured by one table column, with ``marks`` (uploaded photos)
    as stars; one shared figure per choice (never modify it): copying 100,000 points out of
    ``st.cache_data`` on every rerun would cost more than drawing them."""
    art = artifacts(folder, version)
    coords = np.asarray(art.array(EMBEDDING_FILE), dtype=np.float32)
    table = art.table
    names = table["path"].astype(str).str.rsplit("/", n=1).str[-1]
    hover = names + " · true " + table["label"].astype(str) + " → " + table["pred"].astype(str)
    return embedding_figure(coords, table[column], label, hover.tolist(), marks)


@st.cache_data(max_entries=16, show_spinner=False)
def breed_summary(folder: str, version: float, method: str) -> pd.DataFrame:
    """Per-breed figures of an analysis (the Breeds page's table).

    Raises:
        ValueError: the analysis has no breeds.
    """
    return breed_table(artifacts(folder, version).table, method)
