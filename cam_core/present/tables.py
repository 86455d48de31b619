"""Tables shown both in the HTML report and on the dashboard, built once from an analysis.

A :class:`DisplayTable` holds the values and how to write each column; :meth:`DisplayTable.text`
is exactly what a reader sees, in the report and on the pages alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from cam_core.analysis.artifacts import Manifest
from cam_core.evaluation.layers import LayerChoice
from cam_core.evaluation.metrics import per_class_scores
from cam_core.evaluation.shortcuts import ShortcutSearch
from cam_core.evaluation.suite import quality_by_class, quality_table
from cam_core.present.display import (
    Column,
    display_value,
    method_title,
    percent_interval,
    region_words,
)

__all__ = [
    "DisplayTable",
    "layer_choice_display",
    "per_class_display",
    "quality_by_class_display",
    "quality_display",
    "shortcut_display",
    "slices_display",
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


SHORTCUT_COLUMNS = (
    Column("class", "class", "text"),
    Column("region", "region", "text", "Where the class's maps concentrate (share of the side)."),
    Column("verdict", "verdict", "text", "shortcut: off the object and causal."),
    Column(
        "concentration",
        "concentration",
        "score",
        "The class-mean map's mass in the region over the region's area (1: no more than "
        "anywhere else).",
    ),
    Column(
        "off_object",
        "region off the object",
        "percent",
        "Share of the class's images whose region does not touch the marked parts.",
    ),
    Column(
        "mass_off_object",
        "map mass off the object",
        "percent",
        "Mean share of the class's map mass outside the marked parts.",
    ),
    Column(
        "removal",
        "removal: probability drop",
        "text",
        "Mean drop of the class's probability when the region is filled with the image's mean "
        "colour [95% interval], against the same fill at a random place.",
    ),
    Column(
        "log_odds",
        "removal: log-odds drop",
        "text",
        "Mean drop of the class's log-odds (nats) against the control's; the verdict reads "
        "this (at least 1 beyond the control, and beyond chance).",
    ),
    Column("accuracy_drop", "removal: accuracy drop", "percent", "Points of accuracy lost."),
    Column(
        "transplant",
        "transplant: flips to the class",
        "text",
        "Share of other classes' images predicted as the class once the region is pasted "
        "from the class's images [95% interval], against pasting it from other classes'.",
    ),
    Column("n", "images tested", "count", "Images in the removal test."),
)


def shortcut_display(search: ShortcutSearch, limit: int | None = None) -> DisplayTable:
    """The ranked candidates of a shortcut search (the first ``limit``), as the page and the
    report show them."""
    rows = []
    for finding in search.findings[:limit]:
        removal, transplant = finding.removal, finding.transplant
        rows.append(
            {
                "class": finding.class_name,
                "region": region_words(finding.box),
                "verdict": finding.verdict.value,
                "concentration": finding.concentration,
                "off_object": finding.off_object,
                "mass_off_object": finding.mass_off_object,
                "removal": _versus(removal.effect, removal.interval, removal.control)
                if removal
                else None,
                "log_odds": _log_odds_text(removal.log_odds_drop, removal.log_odds_control)
                if removal
                else None,
                "accuracy_drop": removal.accuracy_drop if removal else None,
                "transplant": _versus(transplant.effect, transplant.interval, transplant.control)
                if transplant
                else None,
                "n": removal.n if removal else None,
            }
        )
    frame = pd.DataFrame(rows, columns=[c.key for c in SHORTCUT_COLUMNS])
    frame.index = pd.Index([str(i + 1) for i in range(len(frame))])
    return DisplayTable("rank", SHORTCUT_COLUMNS, frame)


def _log_odds_text(drop: float | None, control: float | None) -> str | None:
    if drop is None or control is None:
        return None
    return f"{drop:.2f} vs {control:.2f}"


def _versus(effect: float, interval: tuple[float, float], control: float) -> str:
    return f"{percent_interval(effect, interval)} vs {control:.1%}"


SLICE_COLUMNS = (
    Column("feature", "feature", "text"),
    Column("value", "slice", "text"),
    Column("n", "images", "count"),
    Column("error_rate", "error rate", "text", "Errors in the slice [Wilson 95% interval]."),
    Column("rest_rate", "rest", "percent", "Error rate of every other image."),
    Column("gap", "gap", "percent", "Error rate minus the rest's."),
    Column("worse", "worse than the rest", "text", "The interval's low end is above the rest."),
)


def slices_display(slices: pd.DataFrame, limit: int = 20) -> DisplayTable:
    """The ``limit`` worst slices (:func:`cam_core.evaluation.slices.weak_slices`)."""
    top = slices.head(limit)
    frame = pd.DataFrame(
        {
            "feature": top["feature"],
            "value": top["value"],
            "n": top["n"],
            "error_rate": [
                percent_interval(rate, (low, high))
                for rate, low, high in zip(top["error_rate"], top["low"], top["high"], strict=True)
            ],
            "rest_rate": top["rest_rate"],
            "gap": top["gap"],
            "worse": ["yes" if worse else "no" for worse in top["worse"]],
        }
    )
    frame.index = pd.Index([str(i + 1) for i in range(len(frame))])
    return DisplayTable("rank", SLICE_COLUMNS, frame)


LAYER_COLUMNS = (
    Column("grid", "grid", "text", "The maps' resolution at this layer (finer is sharper)."),
    Column(
        "deletion_auc",
        "deletion AUC",
        "score",
        "Mean probability of the true class while the most relevant pixels are removed "
        "(lower: more faithful).",
    ),
    Column(
        "insertion_auc",
        "insertion AUC",
        "score",
        "Mean probability of the true class while the most relevant pixels are revealed "
        "(higher: more faithful).",
    ),
    Column(
        "baselines",
        "baselines (deletion / insertion)",
        "text",
        "The random and the centred map at the same grid, through the same curves.",
    ),
    Column(
        "randomization_spearman",
        "sanity: rank corr. after randomisation",
        "correlation",
        "Median Spearman correlation with the maps of a model whose head and last block are "
        "re-initialised (below 0.5 passes).",
    ),
    Column("faithful", "beats both baselines", "check"),
    Column("sanity_passed", "sanity", "check"),
    Column("chosen", "chosen", "text"),
)


def layer_choice_display(choice: LayerChoice) -> DisplayTable:
    """The candidate layers of a ``--layer auto`` choice with their scores, as the CLI, the
    Compare methods page and the report show them."""
    rows = []
    for score in choice.candidates:
        baselines = "; ".join(
            f"{name} {figures['deletion_auc']:.3f} / {figures['insertion_auc']:.3f}"
            for name, figures in score.baselines.items()
        )
        rows.append(
            {
                "grid": f"{score.grid[0]}×{score.grid[1]}",
                "deletion_auc": score.deletion_auc,
                "insertion_auc": score.insertion_auc,
                "baselines": baselines,
                "randomization_spearman": score.randomization_spearman,
                "faithful": score.faithful,
                "sanity_passed": score.sanity_passed,
                "chosen": "✓" if score.layer == choice.chosen else "",
            }
        )
    frame = pd.DataFrame(rows, columns=[c.key for c in LAYER_COLUMNS])
    frame.index = pd.Index([score.layer for score in choice.candidates])
    return DisplayTable("layer", LAYER_COLUMNS, frame)
