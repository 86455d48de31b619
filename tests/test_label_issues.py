"""Suspected label errors (cleanlab) on a demo model that has learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cam_core.analysis.artifacts import read_artifacts
from cam_core.review.label_issues import LABEL_ISSUE_RANK, LABEL_QUALITY, suspected_label_errors


def _mislabel(table: pd.DataFrame, rows: list[int], classes: tuple[str, ...]) -> pd.DataFrame:
    """The table as if these images' files had been named after the other species."""
    flipped = table.copy()
    for row in rows:
        given = str(flipped.at[row, "label"])
        flipped.at[row, "label"] = classes[1 - classes.index(given)]
    flipped["correct"] = flipped["label"] == flipped["pred"]
    return flipped


def test_images_mislabelled_on_purpose_come_first(trained_species_run: Path) -> None:
    art = read_artifacts(trained_species_run / "artifacts")
    classes = art.manifest.classes
    table = art.table
    assert table["correct"].mean() >= 0.95  # the model has learned
    confident = table[table["correct"] & (table["confidence"] > 0.9)].index
    rng = np.random.default_rng(0)
    chosen = sorted(int(i) for i in rng.choice(confident, size=4, replace=False))
    result = suspected_label_errors(_mislabel(table, chosen, classes), classes)
    ranked = result[LABEL_ISSUE_RANK].dropna().sort_values()
    # cleanlab estimates how many labels are wrong (3 or 4 of the 4 here, by the model) and
    # flags that many: the planted ones, first, in order of label quality.
    planted = [int(i) for i in ranked.index if int(i) in chosen]
    assert len(planted) >= 3
    assert sorted(int(i) for i in ranked.index[: len(planted)]) == sorted(planted)
    assert result.loc[ranked.index, LABEL_QUALITY].is_monotonic_increasing
    assert result.loc[chosen, LABEL_QUALITY].max() < 0.1
    # Without the mislabelling, none of those images is suspected.
    clean = suspected_label_errors(table, classes)
    assert clean.loc[chosen, LABEL_ISSUE_RANK].isna().all()


def test_degenerate_tables_suspect_nothing() -> None:
    table = pd.DataFrame({"label": ["cat", "cat"], "prob_cat": [0.9, 0.2], "prob_dog": [0.1, 0.8]})
    result = suspected_label_errors(table, ("cat", "dog"))
    assert result[LABEL_ISSUE_RANK].isna().all()  # one class present: no ranking
    np.testing.assert_allclose(result[LABEL_QUALITY], [0.9, 0.2])
    empty = suspected_label_errors(table.iloc[:0], ("cat", "dog"))
    assert empty.empty
