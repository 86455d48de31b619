"""How facts are shown, in one place: display names, number formats, verdict labels and notes.

The HTML report and the dashboard both take their words and formats from here, so a figure
reads the same in both (the report renders these as HTML, the pages as ``column_config``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cam_core.methods import METHODS, MapValues, MethodRecord

__all__ = [
    "BASELINE_TITLES",
    "Column",
    "Kind",
    "check_label",
    "display_value",
    "finding_marks",
    "map_meaning",
    "map_note",
    "map_title",
    "method_title",
    "percent_interval",
    "quality_note",
    "region_words",
    "unfamiliar_warning",
    "unfamiliar_words",
]

Kind = Literal["percent", "score", "correlation", "probability", "count", "check", "text"]
"""How a value is written: ``percent`` (``91.2%``), ``score`` (an AUC or loss, ``0.683``),
``correlation`` (``+0.49``), ``probability`` (``0.98``), ``count`` (``12``), ``check``
(passed / FAILED) or ``text``."""

MISSING = "–"
"""What a figure that was not measured shows."""

BASELINE_TITLES = {"random": "random map (baseline)", "centre": "centred Gaussian (baseline)"}
"""Display names of the maps that know nothing (:mod:`cam_core.evaluation.baselines`)."""


@dataclass(frozen=True)
class Column:
    """One column of a displayed table.

    Attributes:
        key: the column of the underlying frame.
        label: its heading.
        kind: how its values are written (:data:`Kind`).
        help: a one-line explanation (a tooltip on the page, a title in the report).
    """

    key: str
    label: str
    kind: Kind
    help: str = ""


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def check_label(passed: bool | None) -> str:
    """``passed``, ``FAILED``, or :data:`MISSING` when the check was not run.

    Plain words: emoji badges need a colour-emoji font that many servers and browsers lack.
    """
    if passed is None or _missing(passed):
        return MISSING
    return "passed" if passed else "FAILED"


def display_value(kind: Kind, value: Any) -> str:
    """``value`` written as a ``kind``; :data:`MISSING` where it was not measured."""
    if kind == "check":
        return check_label(value)
    if _missing(value):
        return MISSING
    if kind == "percent":
        return f"{float(value):.1%}"
    if kind == "score":
        return f"{float(value):.3f}"
    if kind == "correlation":
        return f"{float(value):+.2f}"
    if kind == "probability":
        return f"{float(value):.2f}"
    if kind == "count":
        return f"{int(value)}"
    return str(value)


def method_title(name: str, methods: Mapping[str, MethodRecord]) -> str:
    """The display name of a method as an analysis recorded it, of a registered method, or
    of a baseline."""
    if name in methods:
        return methods[name].title
    if name in METHODS:
        return METHODS[name].title
    return BASELINE_TITLES.get(name, name)


_MEANING = {
    MapValues.LOGIT: "mean = logit (additive)",
    MapValues.LOGIT_WITH_BIAS: "mean + bias = logit (additive)",
    MapValues.SCALED: "scaled 0–1 per map",
    MapValues.RAW: "raw scores",
}
_NOTE = {
    MapValues.LOGIT: "Each map's mean equals the class logit.",
    MapValues.LOGIT_WITH_BIAS: "Each map's mean plus the class's bias equals the class logit.",
    MapValues.SCALED: "Maps are min-max scaled per image (0 to 1), so compare where, not how much.",
    MapValues.RAW: "Map values are the method's raw scores, on no common scale.",
}


_SAME_FOR_EVERY_CLASS = "same map for every class"
_AGNOSTIC_NOTE = (
    " It does not depend on the class: it follows how the class token draws on each patch "
    "through the attention of every block, so every class shows the same map."
)


def map_meaning(record: MethodRecord) -> str:
    """A few words on what a method's map values mean (captions, selectors)."""
    words = _MEANING[record.values]
    return f"{words}; {_SAME_FOR_EVERY_CLASS}" if record.class_agnostic else words


def map_note(record: MethodRecord) -> str:
    """One sentence on what a method's map values mean (the report, page notes)."""
    return _NOTE[record.values] + (_AGNOSTIC_NOTE if record.class_agnostic else "")


def map_title(name: str, mean: float, record: MethodRecord, bias: float | None = None) -> str:
    """The title of one class's map: its mean and the logit where the method is additive.

    Args:
        name: the class.
        mean: the map's spatial mean.
        record: the method that made the map.
        bias: the class's bias, for additive maps of a head that has one.
    """
    if record.values is MapValues.LOGIT_WITH_BIAS and bias is not None:
        return f"{name}: mean {mean:+.3f} + bias {bias:+.3f} = logit"
    if record.additive:
        return f"{name}: mean {mean:+.3f} = logit"
    return f"{name} ({map_meaning(record)})"


def missing_map_words(name: str, record: MethodRecord) -> str:
    """Why a class has no map of a method: the analysis kept a class budget per image."""
    return (
        f"No {record.title} map of **{name}** for this image: the analysis computed "
        f"{record.title} for {record.shape[1]} classes per image (the true class, the "
        "prediction and the next most probable) to keep its cost independent of the number "
        "of classes. Exact CAM has every class; re-run `analyze --classes-per-image all` for "
        "every class of this method."
    )


def finding_marks(row: Mapping[str, Any]) -> str:
    """What a card says of an image's familiarity and near-copies (empty when nothing)."""
    marks = ""
    if bool(row.get("unfamiliar", False)):
        marks += f" · unfamiliar ({unfamiliar_words(row.get('less_familiar_than'))})"
    if bool(row.get("leaked", False)):
        marks += " · near-copy of a training image"
    elif bool(row.get("near_duplicate", False)):
        marks += " · near-duplicate"
    return marks


def unfamiliar_words(less_familiar_than: Any) -> str:
    """``"less familiar than 99.7% of validation images"``, or :data:`MISSING`."""
    if _missing(less_familiar_than):
        return MISSING
    return f"less familiar than {float(less_familiar_than):.1f}% of validation images"


def unfamiliar_warning(less_familiar_than: float) -> str:
    """The warning above a prediction for an image unlike the model's training images, in
    words a non-expert reads."""
    return (
        "This image is unlike the images this model was trained on "
        f"({unfamiliar_words(less_familiar_than)}), so its answer and its maps may mean "
        "nothing."
    )


def quality_note(evaluation: Mapping[str, Any]) -> str:
    """How the explanation quality was measured and what its verdicts mean, in one paragraph."""
    return (
        f"Deletion/insertion on a seeded sample of {evaluation.get('sample_size', '?')} images "
        f"({evaluation.get('steps', '?')} steps, blurred baseline); sanity check on "
        f"{evaluation.get('sanity_size', '?')} of them. Lower deletion and higher insertion are "
        "better; faithful means better than both the random and the centred baseline (maps "
        "that know nothing); the sanity check fails when maps barely change after the model's "
        "head and last block are re-initialised (median Spearman ≥ "
        f"{evaluation.get('sanity_threshold', 0.5)})."
    )


def percent_interval(value: float, interval: tuple[float, float]) -> str:
    """A share with its 95% interval: ``"27.5% [22.6–32.6%]"``."""
    if _missing(value):
        return MISSING
    low, high = interval
    return f"{value:.1%} [{low * 100:.1f}–{high * 100:.1f}%]"


def region_words(box: tuple[float, float, float, float]) -> str:
    """Where a region is, in words and percent of the side: ``"bottom-right (83–100% across,
    79–96% down)"``."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    down = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    across = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    place = "centre" if (down, across) == ("middle", "centre") else f"{down}-{across}"
    return f"{place} ({x0:.0%}–{x1:.0%} across, {y0:.0%}–{y1:.0%} down)"
