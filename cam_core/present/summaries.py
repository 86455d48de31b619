"""Summaries shown both in the dashboard and in the HTML report, computed in one place.

Each function turns a model card or a predictions table into display-ready text, so the
report and the Overview page cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from cam_core.analysis.artifacts import Artifacts, Manifest
from cam_core.evaluation.metrics import summary
from cam_core.evaluation.shortcuts import wilson_interval
from cam_core.evaluation.suite import verdicts
from cam_core.methods import primary_method
from cam_core.modelling.model_files import ModelCard
from cam_core.present.display import MISSING, display_value

__all__ = [
    "Confusion",
    "Headline",
    "StakeholderSummary",
    "SummaryNumber",
    "breed_table",
    "finding_headlines",
    "headline_metrics",
    "largest_confusions",
    "method_to_believe",
    "model_card_rows",
    "model_line",
    "stakeholder_summary",
]


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
    reference = record.reference if record is not None and record.reference else "none"
    checked = bool(duplicates.get("checked_against_training"))
    return [
        Headline(
            "Unfamiliar images",
            f"{int(table['unfamiliar'].sum())} "
            f"({display_value('percent', table['unfamiliar'].mean())})"
            if scored
            else "–",
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


@dataclass(frozen=True)
class SummaryNumber:
    """One number of the stakeholder summary and the page that explains it.

    Attributes:
        label: what it is.
        value: the number as shown.
        help: one line on how it was measured.
        page: the slug of the dashboard page behind it (:mod:`dashboard.pages`).
        interval: its 95% interval as shown (``"5.7–45.1%"``), empty where it has none.
    """

    label: str
    value: str
    help: str
    page: str
    interval: str = ""


@dataclass(frozen=True)
class Confusion:
    """One of the largest confusions: ``count`` images of ``true`` predicted ``pred``, and the
    worst of them (highest loss) as the example."""

    true: str
    pred: str
    count: int
    share: float
    example_row: int


@dataclass(frozen=True)
class StakeholderSummary:
    """What fits one screen of a meeting (the dashboard's Summary page, the report's first
    section).

    Attributes:
        model_line: the model and the data in one line.
        numbers: headline figures with intervals, each with the page behind it.
        confusions: the three largest confusions, largest first.
        believe: the method to believe (``None`` when none is worth it or none was scored).
        believe_why: why, or why none.
        verdicts: images per verdict and the unreviewed errors (``None`` without the file).
    """

    model_line: str
    numbers: tuple[SummaryNumber, ...]
    confusions: tuple[Confusion, ...]
    believe: str | None
    believe_why: str
    verdicts: dict[str, int] | None


def model_line(manifest: Manifest, card: ModelCard | None) -> str:
    """``resnet34 (imported) · 2 classes (cat, dog) · 224 px · 1,478 validation images of
    /data/pets (species)``."""
    arch = card.arch if card is not None else "model (card unavailable)"
    if card is not None and card.imported:
        arch += " (imported)"
    names = ", ".join(manifest.classes[:4]) + (" …" if len(manifest.classes) > 4 else "")
    data = manifest.data
    task = f" ({data['task']})" if data.get("task") else ""
    return (
        f"{arch} · {len(manifest.classes)} classes ({names}) · {manifest.image_size} px · "
        f"{manifest.n_images:,} validation images of {data.get('root', data.get('source', '?'))}"
        f"{task}"
    )


def method_to_believe(manifest: Manifest) -> tuple[str | None, str]:
    """The method whose maps the evidence supports best, and why (or why none).

    The candidates are the methods that beat both baselines on deletion and insertion and pass
    the sanity check; among them the one with the widest insertion − deletion margin.
    """
    quality = manifest.quality
    judged = verdicts(quality)
    if not judged or all(v["faithful"] is None for v in judged.values()):
        return None, "the maps' quality was not measured (the analysis ran without it)"
    good = [name for name, v in judged.items() if v["faithful"] and v["sanity_passed"] is not False]
    if not good:
        return None, (
            "no method beat both baselines (a random and a centred map) and passed the sanity "
            "check: treat every map as a hint, not evidence"
        )

    def margin(name: str) -> float:
        return quality[name]["insertion_auc"] - quality[name]["deletion_auc"]

    best = max(good, key=margin)
    figures = quality[best]
    title = manifest.methods[best].title if best in manifest.methods else best
    spearman = figures.get("randomization_spearman")
    sanity = (
        f", and its maps change when the model is randomised (rank correlation {spearman:+.2f})"
        if spearman is not None
        else ""
    )
    return best, (
        f"{title}: removing what it marks drops the true class fastest and revealing it "
        f"restores the class fastest (deletion AUC {figures['deletion_auc']:.3f}, insertion "
        f"AUC {figures['insertion_auc']:.3f}), better than a random and a centred map"
        f"{sanity}; {len(good)} of {len(judged)} methods pass both checks"
    )


def largest_confusions(
    table: pd.DataFrame, classes: tuple[str, ...], top: int = 3
) -> list[Confusion]:
    """The ``top`` largest (true, predicted) pairs among the errors, largest first (ties: in
    class order), each with its highest-loss image as the example."""
    wrong = table[~table["correct"].to_numpy(dtype=bool)]
    if wrong.empty:
        return []
    order = {name: i for i, name in enumerate(classes)}
    counts = wrong.groupby(["label", "pred"], sort=False).size().reset_index(name="n")
    counts["rank_true"] = counts["label"].map(order)
    counts["rank_pred"] = counts["pred"].map(order)
    counts = counts.sort_values(
        ["n", "rank_true", "rank_pred"], ascending=[False, True, True], kind="stable"
    )
    found = []
    for _, pair in counts.head(top).iterrows():
        rows = wrong[(wrong["label"] == pair["label"]) & (wrong["pred"] == pair["pred"])]
        worst = rows["loss"].idxmax()
        of_true = int((table["label"] == pair["label"]).sum())
        found.append(
            Confusion(
                true=str(pair["label"]),
                pred=str(pair["pred"]),
                count=int(pair["n"]),
                share=int(pair["n"]) / of_true,  # the pair's true class has its images
                example_row=int(table.index.get_loc(worst)),
            )
        )
    return found


def _share(successes: int, n: int) -> tuple[str, str]:
    """A share and its 95% Wilson interval, as shown: ``("20.0%", "5.7–51.0%")``."""
    if n <= 0:
        return MISSING, ""
    low, high = wilson_interval(successes, n)
    return f"{successes / n:.1%}", f"{low * 100:.1f}–{high * 100:.1f}%"


def stakeholder_summary(
    art: Artifacts, card: ModelCard | None, verdicts_counted: dict[str, int] | None
) -> StakeholderSummary:
    """The Summary page's and the report's first section's content, computed once.

    Args:
        art: the analysis.
        card: its model's card (``None`` when the model folder cannot be read).
        verdicts_counted: :func:`cam_core.review.reviews.verdict_counts` of its verdicts,
            ``None`` when the review file cannot be read.
    """
    table, manifest = art.table, art.manifest
    method = primary_method(manifest.method_names)
    stats = summary(table, method)
    n = int(stats["n_images"])
    right = int(table["correct"].sum())
    numbers = [
        SummaryNumber(
            "Accuracy",
            *_share(right, n)[:1],
            f"{right:,} of {n:,} validation images predicted right (95% Wilson interval).",
            "overview",
            _share(right, n)[1],
        ),
        SummaryNumber(
            "Errors",
            display_value("count", stats["n_errors"]),
            "Misclassified validation images.",
            "misclassified",
        ),
    ]
    if "pointing_game" in stats:
        scored = table[f"pointing_hit.{method}"].dropna()  # summary() found the column
        value, interval = _share(int(scored.sum()), len(scored))
        numbers.append(
            SummaryNumber(
                "Maps point at the object",
                value,
                f"Share of the {len(scored):,} images with a mask whose true-class map "
                f"({manifest.methods[method].title}) peaks on the object (95% interval).",
                "quality",
                interval,
            )
        )
    if "unfamiliar" in table.columns:
        unfamiliar = int(table["unfamiliar"].sum())  # a bool column (analysis.findings)
        value, interval = _share(unfamiliar, n)
        numbers.append(
            SummaryNumber(
                "Unfamiliar images",
                value,
                "Validation images less familiar to the model than its threshold (about 5% by "
                "construction on familiar data).",
                "embedding",
                interval,
            )
        )
    believe, why = method_to_believe(manifest)
    counts = dict(verdicts_counted) if verdicts_counted is not None else None
    return StakeholderSummary(
        model_line=model_line(manifest, card),
        numbers=tuple(numbers),
        confusions=tuple(largest_confusions(table, manifest.classes)),
        believe=believe,
        believe_why=why,
        verdicts=counts,
    )
