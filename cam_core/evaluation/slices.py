"""Weak slices: groups of images where the model fails more often than on the rest.

Slices come from metadata (breed, source sub-folder, file format, image size, aspect ratio)
and from simple image properties measured once at analysis time on the model's input
(brightness, contrast, colourfulness, sharpness), cut into quantile bins. Each slice's error
rate is compared with the rest's, with a Wilson 95% interval; slices are ranked by how much
worse they are. Only slices with at least ``min_images`` images are ranked.

Deepchecks' weak-segments check does something alike with a surrogate model, but its last
release (0.19.1) pulls a Jupyter stack (ipykernel, jupyter-server) and predates the pandas and
NumPy versions we pin; these few lines of pandas are what the check needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from cam_core.evaluation.shortcuts import wilson_interval

__all__ = [
    "FILE_COLUMNS",
    "MIN_SLICE_IMAGES",
    "PROPERTY_COLUMNS",
    "SLICE_PREFIX",
    "file_facts",
    "pixel_properties",
    "slice_columns",
    "weak_slices",
]

PROPERTY_COLUMNS = ("brightness", "contrast", "colourfulness", "sharpness")
"""Image properties measured on the model's input, one column each in the table."""
FILE_COLUMNS = ("width", "height", "format")
SLICE_PREFIX = "slice_"
"""Table columns ``slice_<feature>`` hold each image's slice (a category or a bin label)."""
MIN_SLICE_IMAGES = 20
"""Fewest images for a slice to be ranked (fewer give intervals too wide to read)."""
_BINS = 4


def pixel_properties(images: torch.Tensor) -> np.ndarray:
    """Brightness, contrast, colourfulness and sharpness of each image.

    Args:
        images: RGB ``(N, 3, H, W)`` with values in ``[0, 1]`` (un-normalised model input).

    Returns:
        float32 ``(N, 4)`` in :data:`PROPERTY_COLUMNS` order: mean luma (0..1), luma standard
        deviation, the Hasler-Süsstrunk colourfulness, and the variance of the luma's
        Laplacian (edges: low for blurred images).
    """
    x = images.float()
    red, green, blue = x[:, 0], x[:, 1], x[:, 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    rg, yb = red - green, 0.5 * (red + green) - blue
    colourfulness = torch.sqrt(rg.var(dim=(1, 2)) + yb.var(dim=(1, 2))) + 0.3 * torch.sqrt(
        rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2
    )
    laplacian = (
        luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1] + luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:]
    ) - 4 * luma[:, 1:-1, 1:-1]
    columns = [
        luma.mean(dim=(1, 2)),
        luma.std(dim=(1, 2)),
        colourfulness,
        laplacian.var(dim=(1, 2)),
    ]
    return torch.stack(columns, dim=1).cpu().numpy().astype(np.float32)


def file_facts(paths: Sequence[Path]) -> pd.DataFrame:
    """Width, height and format of each image file, read from its header only.

    Returns:
        Columns :data:`FILE_COLUMNS`; 0 and ``"unreadable"`` for a file that no longer opens.
    """
    widths, heights, formats = [], [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height, kind = image.width, image.height, str(image.format or "?")
        except (OSError, UnidentifiedImageError, ValueError):
            width, height, kind = 0, 0, "unreadable"
        widths.append(width)
        heights.append(height)
        formats.append(kind)
    return pd.DataFrame({"width": widths, "height": heights, "format": formats})


def _bins(values: pd.Series, name: str) -> pd.Series:
    """Quantile bins labelled with their range, e.g. ``"brightness Q1 (0.05–0.31)"``."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.nunique() <= _BINS:
        named = numbers.map(lambda v: f"{name} {v:g}", na_action="ignore")
    else:
        codes = pd.qcut(numbers, _BINS, labels=False, duplicates="drop")
        labels = {}
        for code in sorted(c for c in codes.dropna().unique()):
            part = numbers[codes == code]
            labels[code] = f"{name} Q{int(code) + 1} ({part.min():.3g}–{part.max():.3g})"
        named = codes.map(labels)
    return named.fillna(f"{name} unknown").astype(str)


def slice_columns(table: pd.DataFrame, root: Path | None = None) -> dict[str, list[str]]:
    """Each image's slice for every feature the table allows.

    Args:
        table: the predictions table, with :data:`PROPERTY_COLUMNS` and :data:`FILE_COLUMNS`
            where measured, ``breed`` where known.
        root: the data folder; with it, the sub-folder of each image is a feature when there
            is more than one.

    Returns:
        ``slice_<feature>`` → one label per row.
    """
    out: dict[str, pd.Series] = {}
    if "breed" in table and table["breed"].notna().any():
        out["breed"] = table["breed"].fillna("unknown").astype(str)
    if root is not None and len(table):
        folders = pd.Series(
            [_sub_folder(Path(p), root) for p in table["path"]], index=table.index, dtype=str
        )
        if folders.nunique() > 1:
            out["folder"] = folders
    if "format" in table:
        out["format"] = table["format"].astype(str)
    if {"width", "height"} <= set(table.columns):
        width, height = table["width"].astype(int), table["height"].astype(int)
        sizes = width.astype(str) + "×" + height.astype(str)
        area = table["width"].astype(float) * table["height"].astype(float)
        out["size"] = sizes if sizes.nunique() <= _BINS else _bins(area.pow(0.5), "side")
        ratio = table["width"].astype(float) / table["height"].replace(0, np.nan).astype(float)
        out["aspect"] = ratio.map(_aspect)
    for name in PROPERTY_COLUMNS:
        if name in table:
            out[name] = _bins(table[name], name)
    return {f"{SLICE_PREFIX}{name}": series.tolist() for name, series in out.items()}


def _sub_folder(path: Path, root: Path) -> str:
    try:
        parent = path.parent.relative_to(root)
    except ValueError:
        return str(path.parent)
    return str(parent) or "."


def _aspect(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "unknown"
    if ratio > 1.1:
        return "landscape"
    return "portrait" if ratio < 1 / 1.1 else "square"


def weak_slices(table: pd.DataFrame, min_images: int = MIN_SLICE_IMAGES) -> pd.DataFrame:
    """Every slice with enough images, worst first.

    Args:
        table: with ``correct`` and ``slice_<feature>`` columns (:func:`slice_columns`).
        min_images: fewest images of a slice (and of the rest) to be ranked.

    Returns:
        One row per slice: ``feature``, ``value``, ``n``, ``errors``, ``error_rate`` with
        its Wilson 95% interval (``low``, ``high``), ``rest_rate`` (the other images'),
        ``gap`` (error rate minus the rest's) and ``worse`` (the interval's low end is above
        the rest's rate); sorted by ``gap``, highest first.
    """
    columns = [c for c in table.columns if c.startswith(SLICE_PREFIX)]
    wrong = ~table["correct"].astype(bool).to_numpy()
    total, total_errors = len(table), int(wrong.sum())
    rows = []
    for column in columns:
        values = table[column].astype(str).to_numpy()
        if len(set(values)) < 2:
            continue
        for value in sorted(set(values)):
            inside = values == value
            n, errors = int(inside.sum()), int(wrong[inside].sum())
            if n < min_images or total - n < min_images:
                continue
            low, high = wilson_interval(errors, n)
            rest = (total_errors - errors) / (total - n)
            rows.append(
                {
                    "feature": column[len(SLICE_PREFIX) :],
                    "value": value,
                    "n": n,
                    "errors": errors,
                    "error_rate": errors / n,
                    "low": low,
                    "high": high,
                    "rest_rate": rest,
                    "gap": errors / n - rest,
                    "worse": low > rest,
                }
            )
    result = pd.DataFrame(
        rows,
        columns=[
            "feature",
            "value",
            "n",
            "errors",
            "error_rate",
            "low",
            "high",
            "rest_rate",
            "gap",
            "worse",
        ],
    )
    return result.sort_values(["worse", "gap"], ascending=False, ignore_index=True)
