"""Filtering, sorting and paging of the predictions table (gallery and error lists)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

__all__ = ["SORTS", "GalleryFilter", "classes_in", "errors", "filter_predictions", "page_of"]

SORTS = {
    "loss (highest first)": ("loss", False),
    "confidence (highest first)": ("confidence", False),
    "confidence (lowest first)": ("confidence", True),
    "file name": ("path", True),
}


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery shows.

    Attributes:
        confidence: inclusive ``(low, high)`` range of the predicted class's probability.
        correctness: ``"all"``, ``"correct"`` or ``"incorrect"``.
        true_classes: keep these labels (empty: all).
        pred_classes: keep these predictions (empty: all).
        sort: a key of :data:`SORTS`.
    """

    confidence: tuple[float, float] = (0.0, 1.0)
    correctness: str = "all"
    true_classes: tuple[str, ...] = ()
    pred_classes: tuple[str, ...] = ()
    sort: str = "loss (highest first)"


def filter_predictions(table: pd.DataFrame, flt: GalleryFilter) -> pd.DataFrame:
    """Rows matching the filter, sorted; the original index is kept (it addresses ``cams``)."""
    low, high = flt.confidence
    keep = table["confidence"].between(low, high, inclusive="both")
    if flt.correctness == "correct":
        keep &= table["correct"]
    elif flt.correctness == "incorrect":
        keep &= ~table["correct"]
    elif flt.correctness != "all":
        raise ValueError(f"correctness must be all, correct or incorrect, got {flt.correctness!r}")
    if flt.true_classes:
        keep &= table["label"].isin(flt.true_classes)
    if flt.pred_classes:
        keep &= table["pred"].isin(flt.pred_classes)
    column, ascending = SORTS[flt.sort]
    return table[keep].sort_values(column, ascending=ascending, kind="stable")


def errors(table: pd.DataFrame, by: str = "loss") -> pd.DataFrame:
    """The misclassified rows, worst first by ``loss`` or ``confidence``."""
    if by not in ("loss", "confidence"):
        raise ValueError(f"sort errors by loss or confidence, not {by!r}")
    return table[~table["correct"]].sort_values(by, ascending=False, kind="stable")


def page_of(rows: pd.DataFrame, page: int, per_page: int) -> tuple[pd.DataFrame, int]:
    """One page of rows (1-based ``page``, clamped) and the number of pages (at least 1)."""
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return rows.iloc[start : start + per_page], pages


def classes_in(table: pd.DataFrame, classes: Sequence[str]) -> list[str]:
    """Class names in model order (helper for widget options)."""
    present = set(table["label"]) | set(table["pred"])
    return [c for c in classes if c in present]
