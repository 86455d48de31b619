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


def _confident_table(n: int, flipped: dict[int, float], seed: int = 0) -> pd.DataFrame:
    """``n`` images over cat/dog/fox (fox never given as a label), predicted with confidence
    0.9–0.99 for their labels, except the rows in ``flipped`` whose given label gets that
    probability (the rest goes to the other of cat/dog)."""
    rng = np.random.default_rng(seed)
    labels = np.array(["cat", "dog"] * (n // 2))
    rows = []
    for i, label in enumerate(labels):
        given = flipped.get(i, rng.uniform(0.9, 0.99))
        other = 1.0 - given - 0.004
        probs = {"cat": given, "dog": other} if label == "cat" else {"cat": other, "dog": given}
        rows.append({"label": label, **{f"prob_{k}": v for k, v in probs.items()}})
        rows[-1]["prob_fox"] = 0.004
    return pd.DataFrame(rows, index=pd.RangeIndex(100, 100 + n))


def test_planted_errors_rank_first_in_order_of_how_wrong_they_are() -> None:
    # rows 7, 2, 12 get 0.01, 0.03, 0.06 for their given label: rank 1, 2, 3 in that order
    flipped = {2: 0.03, 7: 0.01, 12: 0.06}
    table = _confident_table(40, flipped)
    result = suspected_label_errors(table, ("cat", "dog", "fox"))
    assert list(result.index) == list(table.index)
    ranks = result[LABEL_ISSUE_RANK]
    assert ranks.loc[107] == 1 and ranks.loc[102] == 2 and ranks.loc[112] == 3
    assert ranks.dropna().size == 3
    # label quality is the probability of the given label (before dropping the absent class)
    np.testing.assert_allclose(result.loc[[107, 102, 112], LABEL_QUALITY], [0.01, 0.03, 0.06])
    expected = [
        table.at[i, f"prob_{label}"] for i, label in zip(table.index, table["label"], strict=True)
    ]
    np.testing.assert_allclose(result[LABEL_QUALITY], expected)


def test_labels_the_model_does_not_know_suspect_nothing() -> None:
    table = _confident_table(10, {3: 0.01})
    table.loc[104, "label"] = "wolf"
    result = suspected_label_errors(table, ("cat", "dog", "fox"))
    assert result[LABEL_ISSUE_RANK].isna().all() and result[LABEL_QUALITY].isna().all()


def test_probabilities_of_classes_never_given_are_dropped_and_rows_renormalised() -> None:
    from cleanlab.filter import find_label_issues

    rng = np.random.default_rng(4)
    n = 60
    labels = np.array([0, 1] * (n // 2))
    given = rng.uniform(0.05, 0.95, n)
    fox = rng.uniform(0.0, 0.6, n) * (1 - given)  # the never-given class takes a varying share
    probs = np.zeros((n, 3))
    probs[np.arange(n), labels] = given
    probs[np.arange(n), 1 - labels] = 1 - given - fox
    probs[:, 2] = fox
    table = pd.DataFrame(
        {
            "label": np.array(["cat", "dog"])[labels],
            "prob_cat": probs[:, 0],
            "prob_dog": probs[:, 1],
            "prob_fox": probs[:, 2],
        }
    )
    result = suspected_label_errors(table, ("cat", "dog", "fox"))
    sub = probs[:, :2] / probs[:, :2].sum(axis=1, keepdims=True)
    expected = find_label_issues(labels, sub, return_indices_ranked_by="self_confidence", n_jobs=1)
    assert len(expected) >= 3
    ranked = result[LABEL_ISSUE_RANK].dropna().sort_values()
    assert [int(i) for i in ranked.index] == [int(i) for i in expected]
    assert result[LABEL_ISSUE_RANK].dtype == "Int64"
    np.testing.assert_allclose(result[LABEL_QUALITY], given)


def test_an_empty_table_has_typed_empty_columns() -> None:
    empty = suspected_label_errors(
        pd.DataFrame({"label": [], "prob_cat": [], "prob_dog": []}), ("cat", "dog")
    )
    assert empty[LABEL_ISSUE_RANK].dtype == "Int64" and empty[LABEL_QUALITY].dtype == float
