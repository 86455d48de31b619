"""How far the model's confidence can be trusted: reliability bins and calibration error."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["confidently_wrong", "expected_calibration_error", "reliability_bins"]


def reliability_bins(table: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width confidence bins: count, mean confidence and accuracy of each.

    Args:
        table: analysis table (``confidence`` = top-class probability, ``correct``).
        n_bins: bins over 0..1 (the lowest possible confidence, 1/K, falls in the first).

    Returns:
        One row per bin: ``low``, ``high``, ``count``, ``confidence`` (mean), ``accuracy``
        (NaN for an empty bin), ``gap`` (accuracy − confidence).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    conf = table["confidence"].to_numpy(dtype=np.float64)
    correct = table["correct"].to_numpy(dtype=bool)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = which == b
        count = int(inside.sum())
        mean_conf = float(conf[inside].mean()) if count else np.nan
        accuracy = float(correct[inside].mean()) if count else np.nan
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "confidence": mean_conf,
                "accuracy": accuracy,
                "gap": accuracy - mean_conf if count else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(table: pd.DataFrame, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean of |accuracy − confidence| over the bins (0 = calibrated)."""
    bins = reliability_bins(table, n_bins)
    total = int(bins["count"].sum())
    if total == 0:
        return float("nan")
    filled = bins[bins["count"] > 0]
    return float((filled["count"] * filled["gap"].abs()).sum() / total)


def confidently_wrong(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Wrong predictions with confidence ≥ ``threshold``, most confident first."""
    wrong = table[(~table["correct"]) & (table["confidence"] >= threshold)]
    return wrong.sort_values("confidence", ascending=False, kind="stable")
