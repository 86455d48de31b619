"""Filtering, sorting and paging of the predictions table (gallery and error lists)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cam_core.evaluation.slices import SLICE_PREFIX

__all__ = [
    "SORT_COLUMNS",
    "SORT_ORDERS",
    "UNREVIEWED",
    "GalleryFilter",
    "errors",
    "filter_predictions",
    "page_count",
    "page_of",
    "rows_from_text",
    "rows_to_text",
]

SORT_COLUMNS = ("loss", "confidence", "path", "label_quality")
UNREVIEWED = "unreviewed"
"""The verdict filter's value for images nobody has judged yet."""
CORRECTNESS = ("all", "correct", "incorrect")
SORT_ORDERS = {
    "loss (highest first)": ("loss", False),
    "confidence (highest first)": ("confidence", False),
    "confidence (lowest first)": ("confidence", True),
    "file name": ("path", True),
    "suspected label error first": ("label_quality", True),
}
"""The gallery's sort orders by name: ``(column, ascending)``."""


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery shows.

    Attributes:
        confidence: inclusive ``(low, high)`` range of the predicted class's probability.
        correctness: ``"all"``, ``"correct"`` or ``"incorrect"``.
        true_classes: keep these labels (empty: all).
        pred_classes: keep these predictions (empty: all).
        sort_by: a column of :data:`SORT_COLUMNS`.
        ascending: sort order (``False``: highest first).
        verdicts: keep images with these verdicts (:data:`UNREVIEWED` for none; empty: all);
            needs a ``verdict`` column (see :func:`cam_core.review.reviews.with_reviews`).
        tag: keep images whose review carries this tag (needs ``review_tags``).
        suspected_only: keep suspected label errors (needs ``label_issue_rank``).
        breeds: keep these breeds (needs ``breed``; empty: all).
        unfamiliar_only: keep images beyond the familiarity threshold (needs ``unfamiliar``).
        duplicates_only: keep images with a near-duplicate among the validation or training
            images (needs ``near_duplicate`` and ``leaked``).
        rows: keep these table rows (a selection made on the embedding map; empty: all).
        slice: ``(feature, value)``: keep one slice of the data (needs ``slice_<feature>``,
            :mod:`cam_core.evaluation.slices`; empty: all).
    """

    confidence: tuple[float, float] = (0.0, 1.0)
    correctness: str = "all"
    true_classes: tuple[str, ...] = ()
    pred_classes: tuple[str, ...] = ()
    sort_by: str = "loss"
    ascending: bool = False
    verdicts: tuple[str, ...] = ()
    tag: str = ""
    suspected_only: bool = False
    breeds: tuple[str, ...] = ()
    unfamiliar_only: bool = False
    duplicates_only: bool = False
    rows: tuple[int, ...] = ()
    slice: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.correctness not in CORRECTNESS:
            raise ValueError(
                f"correctness must be all, correct or incorrect, got {self.correctness!r}"
            )
        if self.sort_by not in SORT_COLUMNS:
            raise ValueError(f"sort by one of {', '.join(SORT_COLUMNS)}, not {self.sort_by!r}")
        if self.slice and len(self.slice) != 2:
            raise ValueError(f"a slice is (feature, value), got {self.slice!r}")
        low, high = self.confidence
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"confidence range must lie within 0..1, got {self.confidence}")

    @property
    def sort_name(self) -> str:
        """The sort order's name in :data:`SORT_ORDERS` (the first order when none matches)."""
        wanted = (self.sort_by, self.ascending)
        return next(
            (name for name, o in SORT_ORDERS.items() if o == wanted), next(iter(SORT_ORDERS))
        )

    def to_query(self) -> dict[str, str]:
        """The filter as link parameters (empty ones left out); :meth:`from_query` reads them."""
        query = {
            "conf": f"{self.confidence[0]:g}-{self.confidence[1]:g}",
            "show": self.correctness,
            "true": ",".join(self.true_classes),
            "pred": ",".join(self.pred_classes),
            "sort": self.sort_name,
            "verdict": ",".join(self.verdicts),
            "tag": self.tag,
            "suspected": "1" if self.suspected_only else "",
            "breed": ",".join(self.breeds),
            "unfamiliar": "1" if self.unfamiliar_only else "",
            "duplicates": "1" if self.duplicates_only else "",
            "rows": rows_to_text(self.rows),
            "slice": ":".join(self.slice),
        }
        return {name: value for name, value in query.items() if value}

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> GalleryFilter:
        """A filter from link parameters; a value that cannot be read keeps its default (a link
        typed by hand opens the gallery rather than an error)."""

        def listed(name: str) -> tuple[str, ...]:
            return tuple(v for v in str(query.get(name, "")).split(",") if v)

        def flag(name: str) -> bool:
            return str(query.get(name, "")) in ("1", "true", "yes")

        confidence = (0.0, 1.0)
        try:
            low, high = (float(v) for v in str(query.get("conf", "0-1")).split("-", 1))
            confidence = (max(0.0, min(low, 1.0)), min(1.0, max(high, 0.0)))
        except ValueError:
            pass
        if confidence[0] > confidence[1]:
            confidence = (0.0, 1.0)
        show = str(query.get("show", "all"))
        sort_by, ascending = SORT_ORDERS.get(
            str(query.get("sort", "")), next(iter(SORT_ORDERS.values()))
        )
        return cls(
            confidence=confidence,
            correctness=show if show in CORRECTNESS else "all",
            true_classes=listed("true"),
            pred_classes=listed("pred"),
            sort_by=sort_by,
            ascending=ascending,
            verdicts=listed("verdict"),
            tag=str(query.get("tag", "")).strip(),
            suspected_only=flag("suspected"),
            breeds=listed("breed"),
            unfamiliar_only=flag("unfamiliar"),
            duplicates_only=flag("duplicates"),
            rows=rows_from_text(str(query.get("rows", ""))),
            slice=_slice_of(str(query.get("slice", ""))),
        )


def _slice_of(text: str) -> tuple[str, ...]:
    feature, colon, value = text.partition(":")
    return (feature, value) if colon and feature and value else ()


def filter_predictions(table: pd.DataFrame, flt: GalleryFilter) -> pd.DataFrame:
    """Rows matching the filter, sorted; the original index is kept (it addresses ``cams``)."""
    low, high = flt.confidence
    keep = table["confidence"].between(low, high, inclusive="both")
    if flt.correctness == "correct":
        keep &= table["correct"]
    elif flt.correctness == "incorrect":
        keep &= ~table["correct"]
    if flt.true_classes:
        keep &= table["label"].isin(flt.true_classes)
    if flt.pred_classes:
        keep &= table["pred"].isin(flt.pred_classes)
    if flt.verdicts:
        verdict = table["verdict"].replace("", UNREVIEWED)
        keep &= verdict.isin(flt.verdicts)
    if flt.tag:
        keep &= table["review_tags"].map(lambda tags: flt.tag in tags)
    if flt.suspected_only:
        keep &= table["label_issue_rank"].notna()
    if flt.breeds:
        keep &= table["breed"].isin(flt.breeds) if "breed" in table else False
    if flt.unfamiliar_only:
        keep &= table["unfamiliar"].astype(bool) if "unfamiliar" in table else False
    if flt.duplicates_only:
        has = [c for c in ("near_duplicate", "leaked") if c in table]
        keep &= table[has].any(axis=1) if has else False
    if flt.rows:
        chosen = np.zeros(len(table), dtype=bool)
        picked = np.array([r for r in flt.rows if 0 <= r < len(table)], dtype=int)
        chosen[picked] = True
        keep &= chosen
    if flt.slice:
        column = SLICE_PREFIX + flt.slice[0]
        keep &= table[column].astype(str).eq(flt.slice[1]) if column in table else False
    return table[keep].sort_values(flt.sort_by, ascending=flt.ascending, kind="stable")


def rows_to_text(rows: tuple[int, ...]) -> str:
    """Rows as compact ranges for a link: ``(0, 1, 2, 5, 9, 10)`` → ``"0-2,5,9-10"``."""
    ordered = sorted(set(rows))
    parts: list[str] = []
    start = previous = None
    for row in [*ordered, None]:
        if row is not None and previous is not None and row == previous + 1:
            previous = row
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = row
    return ",".join(parts)


def rows_from_text(text: str) -> tuple[int, ...]:
    """The inverse of :func:`rows_to_text`; parts that are not rows or ranges are skipped."""
    rows: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            continue
        end = int(high) if high else int(low)
        if end >= int(low):
            rows.extend(range(int(low), min(end, int(low) + 10_000_000) + 1))
    return tuple(sorted(set(rows)))


def errors(table: pd.DataFrame, by: str = "loss") -> pd.DataFrame:
    """The misclassified rows, worst first by ``loss`` or ``confidence``."""
    if by not in ("loss", "confidence"):
        raise ValueError(f"sort errors by loss or confidence, not {by!r}")
    return table[~table["correct"]].sort_values(by, ascending=False, kind="stable")


def page_count(n_rows: int, per_page: int) -> int:
    """Pages needed for ``n_rows`` rows (at least 1, so an empty list still has a page)."""
    return max(1, math.ceil(n_rows / per_page))


def page_of(rows: pd.DataFrame, page: int, per_page: int) -> tuple[pd.DataFrame, int]:
    """One page of rows (1-based ``page``, clamped) and the number of pages (at least 1)."""
    pages = page_count(len(rows), per_page)
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return rows.iloc[start : start + per_page], pages
