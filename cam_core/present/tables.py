"""Tables shown both in the HTML report and on the dashboard, built once from an analysis.

A :class:`DisplayTable` holds the values and how to write each column; :meth:`DisplayTable.text`
is exactly what a reader sees, in the report and on the pages alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from cam_core.analysis.artifacts import Manifest
from cam_core.evaluation.metrics import per_class_scores
from cam_core.evaluation.suite import quality_by_class, quality_table
from cam_core.present.display import Column, display_value, method_title

__all__ = [
    "DisplayTable",
    "per_class_display",
    "quality_by_class_display",
    "quality_display",
]


@dataclass(frozen=True)
class DisplayTable:
    """Rows of values with a heading, a kind and a help text per column.

    Attributes:
        index_label: the heading of the row labels.
        columns: the columns shown, in order.
        values: the values, indexed by row label, one frame column per :attr:`Column.key`.
    """

    index_label: str
    columns: tuple[Column, ...]
    values: pd.DataFrame

    def text(self) -> pd.DataFrame:
        """Every cell as it is shown (strings), with the columns' keys as headers."""
        frame = pd.DataFrame(
            {
                column.key: [display_value(column.kind, v) for v in self.values[column.key]]
                for column in self.columns
            },
            index=pd.Index([str(i) for i in self.values.index], name=self.index_label),
        )
        return frame


def _present(columns: Sequence[Column], frame: pd.DataFrame) -> tuple[Column, ...]:
    return tuple(c for c in columns if c.key in frame.columns)


QUALITY_COLUMNS = (
    Column(
        "pointing_game",
        "pointing game",
        "percent",
        "Share of images whose true-class map peaks on the marked part (within 15 px at 224 px).",
    ),
    Column(
        "energy_in_mask",
        "energy in mask",
        "percent",
        "Share of the map's positive mass inside the marked part.",
    ),
    Column("deletion_auc", "deletion AUC ↓", "score", "Lower is better."),
    Column("insertion_auc", "insertion AUC ↑", "score", "Higher is better."),
    Column(
        "randomization_spearman",
        "Spearman after randomisation ↓",
        "correlation",
        "Median rank correlation of the maps before and after re-initialising the model's "
        "head and last block; maps of the model should change (low).",
    ),
    Column("faithful", "faithful", "check", "Deletion below and insertion above both baselines."),
    Column("sanity", "sanity check", "check", "Maps change when the model is randomised."),
)


def quality_display(manifest: Manifest) -> DisplayTable:
    """Each method and baseline of an analysis with its quality figures and verdicts.

    Raises:
        ValueError: the analysis was run without the quality metrics.
    """
    if not manifest.quality:
        raise ValueError("this analysis was run without the quality metrics")
    frame = quality_table(manifest.quality)
    frame.index = pd.Index([method_title(str(n), manifest.methods) for n in frame.index])
    return DisplayTable("method", _present(QUALITY_COLUMNS, frame), frame)


def quality_by_class_display(table: pd.DataFrame, method: str) -> DisplayTable:
    """Per true class: the mean quality figures of one method's maps, and the image count."""
    frame = quality_by_class(table, method)
    columns = (Column("n", "images", "count"), *QUALITY_COLUMNS[:4])
    return DisplayTable("class", _present(columns, frame), frame)


PER_CLASS_COLUMNS = (
    Column("precision", "precision", "percent", "Share of the class's predictions that are right."),
    Column("recall", "recall", "percent", "Share of the class's images predicted as it."),
    Column("f1", "F1", "percent", "Harmonic mean of precision and recall."),
    Column("support", "images", "count", "Validation images of the class."),
)


def per_class_display(table: pd.DataFrame, classes: Sequence[str]) -> DisplayTable:
    """Precision, recall, F1 and image count of every class."""
    return DisplayTable("class", PER_CLASS_COLUMNS, per_class_scores(table, classes))
