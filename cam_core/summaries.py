"""Summaries shown both in the dashboard and in the HTML report, computed in one place.

Each function turns a model card or a predictions table into display-ready text, so the
report and the Overview page cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from cam_core.metrics import summary
from cam_core.model_files import ModelCard

__all__ = ["Headline", "headline_metrics", "model_card_rows"]


@dataclass(frozen=True)
class Headline:
    """One headline number: its label, formatted value and a one-line explanation."""

    label: str
    value: str
    help: str = ""


def headline_metrics(table: pd.DataFrame, method: str = "cam") -> list[Headline]:
    """Image count, accuracy, errors, mean loss and (with masks) the pointing game.

    Args:
        table: the predictions table of an analysis.
        method: whose maps the pointing game scores.
    """
    stats = summary(table, method)
    headlines = [
        Headline("Validation images", f"{int(stats['n_images'])}", "Images analysed."),
        Headline("Accuracy", f"{stats['accuracy']:.2%}", "Share of images predicted right."),
        Headline("Errors", f"{int(stats['n_errors'])}", "Misclassified images."),
        Headline("Mean loss", f"{stats['mean_loss']:.3f}", "Mean cross-entropy of the label."),
    ]
    if "pointing_game" in stats:
        headlines.append(
            Headline(
                "Pointing game",
                f"{stats['pointing_game']:.1%}",
                f"Share of images whose true-class map ({method}) peaks within 15 px (at "
                "224 px scale) of the ground-truth part.",
            )
        )
    return headlines


def _percent(value: object) -> str:
    number = float(value) if isinstance(value, int | float) else math.nan
    return "n/a" if math.isnan(number) else f"{number:.2%}"


def model_card_rows(card: ModelCard) -> dict[str, str]:
    """The model card as label → text rows (architecture, data, classes, training, hash)."""
    data = card.data
    return {
        "architecture": card.arch,
        "classes": ", ".join(card.classes),
        "image size": f"{card.image_size} px ({card.resize})",
        "data": f"{data.get('source', '?')}: {data.get('n_images', '?')} images, "
        f"{data.get('n_valid', '?')} validation",
        "trained": card.created_at,
        "training accuracy (valid)": _percent(card.metrics.get("valid_accuracy")),
        "weights sha256": card.weights_sha256[:16] + "…",
    }
