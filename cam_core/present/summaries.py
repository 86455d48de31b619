"""Summaries shown both in the dashboard and in the HTML report, computed in one place.

Each function turns a model card or a predictions table into display-ready text, so the
report and the Overview page cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from cam_core.analysis.artifacts import Manifest
from cam_core.evaluation.metrics import summary
from cam_core.modelling.model_files import ModelCard
from cam_core.present.display import display_value

__all__ = ["Headline", "breed_table", "finding_headlines", "headline_metrics", "model_card_rows"]


@dataclass(frozen=True)
class Headline:
    """One headline number: its label, formatted value and a one-line explanation."""

    label: str
    value: str
    help: str = ""


def headline_metrics(table: pd.DataFrame, method: str) -> list[Headline]:
    """Image count, accuracy, errors, mean loss and (with masks) the pointing game.

    Args:
        table: the predictions table of an analysis.
        method: whose maps the pointing game scores.
    """
    stats = summary(table, method)
    headlines = [
        Headline(
            "Validation images",
            display_value("count", stats["n_images"]),
            "Images analysed.",
        ),
        Headline(
            "Accuracy",
            display_value("percent", stats["accuracy"]),
            "Share of images predicted right.",
        ),
        Headline(
            "Errors",
            display_value("count", stats["n_errors"]),
            "Misclassified images.",
        ),
        Headline(
            "Mean loss",
            display_value("score", stats["mean_loss"]),
            "Mean cross-entropy of the label.",
        ),
    ]
    if "pointing_game" in stats:
        headlines.append(
            Headline(
                "Pointing game",
                display_value("percent", stats["pointing_game"]),
                f"Share of images whose true-class map ({method}) peaks within 15 px (at "
                "224 px scale) of the ground-truth part.",
            )
        )
    return headlines


def model_card_rows(card: ModelCard) -> dict[str, str]:
    """The model card as label → text rows (architecture, data, classes, training, hash).

    An imported model shows where its weights came from, its head and the methods that do not
    apply to it, instead of training rows.
    """
    data = card.data
    if card.imported:
        origin = card.provenance
        methods = origin.get("methods", {})
        missing = [f"{name}: {why}" for name, why in methods.items() if why != "applies"]
        fastai = " (fastai vision_learner)" if origin.get("fastai") else ""
        return {
            "architecture": f"{card.arch}{fastai}",
            "classes": ", ".join(card.classes),
            "image size": f"{card.image_size} px ({card.resize}), mean {list(card.mean)}, "
            f"std {list(card.std)}",
            "imported from": f"{origin.get('source', '?')} (sha256 "
            f"{str(origin.get('source_sha256', ''))[:16]}…)",
            "imported": str(origin.get("imported_at", card.created_at)),
            "head": str(origin.get("head", "?")),
            "methods not offered": "; ".join(missing) or "none",
            "weights sha256": card.weights_sha256[:16] + "…",
        }
    return {
        "architecture": card.arch,
        "classes": ", ".join(card.classes),
        "image size": f"{card.image_size} px ({card.resize})",
        "data": f"{data.get('source', '?')}: {data.get('n_images', '?')} images, "
        f"{data.get('n_valid', '?')} validation",
        "trained": card.created_at,
        "recipe": str(card.training.get("recipe", "two stages (the tutorial's)")),
        "training accuracy (valid)": display_value("percent", card.metrics.get("valid_accuracy")),
        "weights sha256": card.weights_sha256[:16] + "…",
    }


def breed_table(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """One row per breed: how the model does on it under the analysed task.

    Args:
        table: a predictions table with a ``breed`` column.
        method: whose pointing game to report.

    Returns:
        Indexed by breed, worst error rate first: ``n``, ``label`` (the class the breed
        belongs to under the task), ``accuracy``, ``errors`` (count), ``error_rate``,
        ``top_wrong`` (most frequent wrong prediction, empty when none), ``mean_confidence``,
        ``pointing_game`` (NaN without masks).

    Raises:
        ValueError: the table has no breeds (data without Pets naming).
    """
    if "breed" not in table.columns or table["breed"].isna().all():
        raise ValueError("this analysis has no breeds (its data is not in the Pets naming)")
    column = f"pointing_hit.{method}"
    # Only the columns used: groups of a wide table (a logit and a probability per class)
    # would copy tens of MB for a big analysis.
    wanted = ["breed", "label", "pred", "correct", "confidence"]
    narrow = table[wanted + ([column] if column in table.columns else [])]
    rows = []
    for breed, group in narrow.groupby("breed", sort=True):
        wrong = group.loc[~group["correct"], "pred"]
        rows.append(
            {
                "breed": breed,
                "n": len(group),
                "label": group["label"].mode().iloc[0],
                "accuracy": float(group["correct"].mean()),
                "errors": len(wrong),
                "error_rate": float(1 - group["correct"].mean()),
                "top_wrong": str(wrong.mode().iloc[0]) if len(wrong) else "",
                "mean_confidence": float(group["confidence"].mean()),
                "pointing_game": float(group[column].mean())
                if column in group and group[column].notna().any()
                else math.nan,
            }
        )
    frame = pd.DataFrame(rows).set_index("breed")
    return frame.sort_values(["error_rate", "n"], ascending=[False, False], kind="stable")


def finding_headlines(table: pd.DataFrame, manifest: Manifest) -> list[Headline]:
    """Unfamiliar images, near-duplicate pairs and images leaked from training (format 3);
    an empty list for an analysis made before features were stored."""
    if "unfamiliar" not in table.columns:
        return []
    record = manifest.familiarity
    duplicates = manifest.duplicates
    scored = record is not None and record.available
    share = display_value("percent", table["unfamiliar"].mean()) if scored else "–"
    reference = record.reference if record is not None and record.reference else "none"
    checked = bool(duplicates.get("checked_against_training"))
    return [
        Headline(
            "Unfamiliar images",
            f"{int(table['unfamiliar'].sum())} ({share})" if scored else "–",
            "Less familiar to the model than 95% of the validation images (reference: "
            f"{reference}); its answers on them may mean nothing.",
        ),
        Headline(
            "Near-duplicate pairs",
            display_value("count", duplicates.get("validation_pairs")),
            "Pairs of validation images that are near-copies of each other.",
        ),
        Headline(
            "Leaked from training",
            display_value("count", duplicates.get("leaked_images")) if checked else "–",
            "Validation images that are near-copies of a training image: they say little "
            "about how the model generalises."
            + ("" if checked else " (not checked: the training images are not known)"),
        ),
    ]
