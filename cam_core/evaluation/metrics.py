"""Model quality from a predictions table: accuracy, confusion matrix, per-class scores and the
headline figures (map quality itself is measured in :mod:`cam_core.evaluation`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "confusion_matrix",
    "confusion_shares",
    "per_class_scores",
    "ratio_or_zero",
    "summary",
]


def ratio_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` where the denominator is positive, else 0 (the one home of
    this rule: an empty class, a constant map).

    Args:
        numerator, denominator: float arrays of broadcastable shapes.

    Returns:
        float64 array of the broadcast shape.
    """
    numerator, denominator = np.asarray(numerator), np.asarray(denominator)
    result = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape))
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


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
    return ratio_or_zero(counts, totals)


def per_class_scores(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (0 where undefined)."""
    matrix = confusion_matrix(table, classes).to_numpy()
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    precision = ratio_or_zero(tp, predicted)
    recall = ratio_or_zero(tp, actual)
    total = precision + recall
    f1 = ratio_or_zero(2 * precision * recall, total)
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(int)},
        index=pd.Index(list(classes), name="class"),
    )


def summary(table: pd.DataFrame, method: str) -> dict[str, float]:
    """Headline numbers: image count, accuracy, error count, mean loss, and the pointing-game
    rate of ``method``'s maps where the table has it (analyses with masks)."""
    result = {
        "n_images": float(len(table)),
        "accuracy": float(table["correct"].mean()) if len(table) else float("nan"),
        "n_errors": float((~table["correct"]).sum()),
        "mean_loss": float(table["loss"].mean()) if len(table) else float("nan"),
    }
    column = f"pointing_hit.{method}"
    if column in table and table[column].notna().any():
        result["pointing_game"] = float(table[column].mean(skipna=True))
        result["pointing_n"] = float(table[column].notna().sum())
    return result
