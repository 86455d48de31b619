"""Suspected label errors: confident learning (Northcutt et al., 2021) through cleanlab.

The validation images are ranked by how likely their given label is wrong, from the model's
predicted probabilities (``prob_<class>`` columns) with ``cleanlab.filter.find_label_issues``.
Out-of-sample probabilities are what confident learning expects; the validation set was not
trained on, so its probabilities are.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["LABEL_ISSUE_RANK", "LABEL_QUALITY", "suspected_label_errors"]

log = logging.getLogger(__name__)

LABEL_ISSUE_RANK = "label_issue_rank"
"""1 for the most likely label error, 2 for the next, …; empty when not suspected."""
LABEL_QUALITY = "label_quality"
"""cleanlab's self-confidence: the probability the model gives the given label (0..1)."""


def suspected_label_errors(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Per row of ``table``: its rank among suspected label errors and its label quality.

    Args:
        table: the analysis table (``label`` and ``prob_<class>`` for every class).
        classes: class names in model order.

    Returns:
        A frame with the table's index and columns :data:`LABEL_ISSUE_RANK` (nullable int,
        1 = most suspect) and :data:`LABEL_QUALITY`. With fewer than two labelled classes
        present, or labels the model does not know, nothing is suspected.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    result = pd.DataFrame(
        {LABEL_ISSUE_RANK: pd.array([pd.NA] * len(table), dtype="Int64")}, index=table.index
    )
    result[LABEL_QUALITY] = np.nan
    if table.empty:
        return result
    index = {name: k for k, name in enumerate(classes)}
    known = table["label"].map(index)
    probs = table[[f"prob_{name}" for name in classes]].to_numpy(dtype=np.float64)
    if known.isna().any():
        log.warning("labels outside the model's classes; no label-error ranking")
        return result
    labels = known.to_numpy(dtype=int)
    result[LABEL_QUALITY] = get_label_quality_scores(labels, probs, method="self_confidence")
    if len(np.unique(labels)) < 2:
        return result
    # cleanlab needs every class of pred_probs among the labels: keep the classes present.
    present = np.unique(labels)
    remap = {int(k): i for i, k in enumerate(present)}
    sub = probs[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = find_label_issues(
            np.array([remap[int(k)] for k in labels]),
            sub,
            return_indices_ranked_by="self_confidence",
            n_jobs=1,  # its default forks a process pool, which hangs inside a server thread
        )
    ranks = result[LABEL_ISSUE_RANK].copy()
    for position, row in enumerate(ranked, start=1):
        ranks.iloc[int(row)] = position
    result[LABEL_ISSUE_RANK] = ranks
    return result
