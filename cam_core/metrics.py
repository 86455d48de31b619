"""Model quality from a predictions table: accuracy, confusion matrix, per-class scores, and
localisation quality of the maps (pointing game)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cam_core.cams import upsample_maps
from cam_core.data import read_mask

__all__ = [
    "POINTING_SCALE_PX",
    "POINTING_TOLERANCE_PX",
    "confusion_matrix",
    "confusion_shares",
    "map_peaks",
    "per_class_scores",
    "pointing_hits",
    "summary",
]

POINTING_SCALE_PX = 224
POINTING_TOLERANCE_PX = 15.0


def confusion_matrix(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Counts of (true, predicted) pairs.

    Returns:
        ``K×K`` integer frame, index = true class, columns = predicted class, in ``classes`` order.
    """
    counts = pd.crosstab(
        pd.Categorical(table["label"], categories=list(classes)),
        pd.Categorical(table["pred"], categories=list(classes)),
        dropna=False,
    )
    counts.index = pd.Index(list(classes), name="true")
    counts.columns = pd.Index(list(classes), name="predicted")
    return counts.astype(int)


def confusion_shares(matrix: pd.DataFrame) -> np.ndarray:
    """Each cell's share of its row (of the true class); 0 for a class with no images.

    Args:
        matrix: ``K×K`` counts from :func:`confusion_matrix`.

    Returns:
        float array ``(K, K)`` whose non-empty rows sum to 1.
    """
    counts = matrix.to_numpy().astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def per_class_scores(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (0 where undefined)."""
    matrix = confusion_matrix(table, classes).to_numpy()
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(int)},
        index=pd.Index(list(classes), name="class"),
    )


def map_peaks(maps: np.ndarray, image_size: int) -> np.ndarray:
    """Where each map peaks, in model-input pixels after bilinear upsampling.

    Args:
        maps: ``(N, h, w)`` one map per image.
        image_size: side of the model input.

    Returns:
        int array ``(N, 2)`` of ``(x, y)``.
    """
    peaks = np.zeros((len(maps), 2), dtype=int)
    for row, single in enumerate(maps):
        up = upsample_maps(single, (image_size, image_size))
        y, x = np.unravel_index(int(np.argmax(up)), up.shape)
        peaks[row] = (x, y)
    return peaks


def pointing_hits(
    peaks: np.ndarray,
    mask_paths: Sequence[str | Path | None],
    image_size: int,
    tolerance_px: float = POINTING_TOLERANCE_PX,
) -> np.ndarray:
    """Pointing game: is each peak within ``tolerance_px`` (at 224 px scale) of its mask?

    Returns:
        float array ``(N,)``: 1.0 hit, 0.0 miss, NaN where there is no mask (or an empty one).
    """
    limit = tolerance_px * image_size / POINTING_SCALE_PX
    hits = np.full(len(peaks), np.nan)
    for row, (peak, mask_path) in enumerate(zip(peaks, mask_paths, strict=True)):
        if mask_path is None or (isinstance(mask_path, float) and np.isnan(mask_path)):
            continue
        ys, xs = np.nonzero(read_mask(Path(mask_path), image_size))
        if len(xs) == 0:
            continue
        distance = float(np.hypot(xs - peak[0], ys - peak[1]).min())
        hits[row] = float(distance <= limit)
    return hits


def summary(table: pd.DataFrame) -> dict[str, float]:
    """Headline numbers: image count, accuracy, error count, mean loss, pointing-game rate."""
    result = {
        "n_images": float(len(table)),
        "accuracy": float(table["correct"].mean()) if len(table) else float("nan"),
        "n_errors": float((~table["correct"]).sum()),
        "mean_loss": float(table["loss"].mean()) if len(table) else float("nan"),
    }
    if "pointing_hit" in table and table["pointing_hit"].notna().any():
        result["pointing_game"] = float(table["pointing_hit"].mean(skipna=True))
        result["pointing_n"] = float(table["pointing_hit"].notna().sum())
    return result
