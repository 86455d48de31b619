from __future__ import annotations

import numpy as np
import pandas as pd

from cam_core.evaluation.metrics import confusion_matrix, per_class_scores, summary


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": ["cat", "cat", "cat", "dog", "dog", "fox"],
            "pred": ["cat", "dog", "cat", "dog", "cat", "fox"],
            "loss": [0.1, 2.0, 0.2, 0.1, 1.5, 0.3],
        }
    ).assign(correct=lambda t: t["label"] == t["pred"])


def test_confusion_matrix_and_scores() -> None:
    classes = ("cat", "dog", "fox")
    matrix = confusion_matrix(_table(), classes)
    assert matrix.loc["cat", "cat"] == 2 and matrix.loc["cat", "dog"] == 1
    assert matrix.loc["dog", "cat"] == 1 and matrix.loc["fox", "fox"] == 1
    assert matrix.to_numpy().sum() == 6
    scores = per_class_scores(_table(), classes)
    assert np.isclose(scores.loc["cat", "precision"], 2 / 3)
    assert np.isclose(scores.loc["cat", "recall"], 2 / 3)
    assert np.isclose(scores.loc["dog", "precision"], 1 / 2)
    assert scores.loc["fox", "f1"] == 1.0 and scores.loc["dog", "support"] == 2
    stats = summary(_table(), "cam")
    assert stats["accuracy"] == 4 / 6 and stats["n_errors"] == 2


def test_summary_reads_the_pointing_game_of_the_chosen_method() -> None:
    table = _table().assign(**{"pointing_hit.cam": [1, 0, 1, 1, np.nan, 1]})
    table["pointing_hit.gradcam"] = 0.0
    assert (
        summary(table, "cam")["pointing_game"] == 0.8 and summary(table, "cam")["pointing_n"] == 5
    )
    assert summary(table, "gradcam")["pointing_game"] == 0.0
    assert "pointing_game" not in summary(table, "layercam")


def test_every_class_has_a_row_and_a_column_in_model_order_even_when_absent() -> None:
    from cam_core.evaluation.metrics import confusion_shares

    classes = ("fox", "dog", "wolf", "cat")  # not alphabetical; wolf never seen
    table = _table()
    table.loc[5, "pred"] = "dog"  # a fox predicted as dog: fox is never predicted
    matrix = confusion_matrix(table, classes)
    assert list(matrix.index) == list(classes) and list(matrix.columns) == list(classes)
    assert matrix.index.name == "true" and matrix.columns.name == "predicted"
    assert all(dtype.kind == "i" for dtype in matrix.dtypes)
    assert matrix.loc["wolf"].sum() == 0 and matrix["wolf"].sum() == 0
    assert matrix.loc["fox", "dog"] == 1 and matrix["fox"].sum() == 0
    expected = np.array([[0, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 2]])
    np.testing.assert_array_equal(matrix.to_numpy(), expected)
    shares = confusion_shares(matrix)
    np.testing.assert_allclose(shares.sum(axis=1), [1, 1, 0, 1])
    assert shares[3, 3] == 2 / 3
    scores = per_class_scores(table, classes)
    # fox: never predicted (precision 0, not undefined), recall 0; wolf: no images at all
    assert scores.loc["fox"].tolist() == [0.0, 0.0, 0.0, 1]
    assert scores.loc["wolf"].tolist() == [0.0, 0.0, 0.0, 0]
    # dog: predicted 3 times, right once; 2 dogs, one found
    assert scores.loc["dog", "precision"] == 1 / 3 and scores.loc["dog", "recall"] == 1 / 2
    assert scores.loc["dog", "f1"] == 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2)


def test_scores_when_a_class_is_all_right_or_all_wrong_and_the_summary_keys() -> None:
    table = pd.DataFrame(
        {
            "label": ["cat"] * 4 + ["dog"] * 2,
            "pred": ["cat", "cat", "dog", "cat", "dog", "dog"],
            "loss": [0.1, 0.2, 1.0, 0.3, 0.2, 0.4],
        }
    ).assign(correct=lambda t: t["label"] == t["pred"])
    scores = per_class_scores(table, ("cat", "dog", "emu"))
    assert scores.index.name == "class" and scores["support"].dtype.kind == "i"
    # cat: precision 3/3, recall 3/4; dog: precision 2/3, recall 2/2
    assert scores.loc["cat", "f1"] == 2 * 1.0 * 0.75 / 1.75
    assert scores.loc["dog", "f1"] == 2 * (2 / 3) * 1.0 / (2 / 3 + 1.0)
    assert scores.loc["emu", "f1"] == 0.0
    stats = summary(table, "cam")
    assert stats == {"n_images": 6.0, "accuracy": 5 / 6, "n_errors": 1.0, "mean_loss": 2.2 / 6}
    empty = summary(table.iloc[:0], "cam")
    assert empty["n_images"] == 0.0 and empty["n_errors"] == 0.0
    assert np.isnan(empty["accuracy"]) and np.isnan(empty["mean_loss"])


def test_confusion_shares_by_hand() -> None:
    from cam_core.evaluation.metrics import confusion_shares

    matrix = pd.DataFrame([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    shares = confusion_shares(matrix)
    np.testing.assert_array_equal(shares, [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]])


def test_a_ratio_is_zero_where_its_denominator_is_not_positive() -> None:
    from cam_core.evaluation.metrics import ratio_or_zero

    got = ratio_or_zero(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 0.0, -1.0, 8.0]))
    np.testing.assert_array_equal(got, [0.5, 0.0, 0.0, 0.5])
    assert got.dtype == np.float64
    # integer counts divide truly; the result takes the shape both broadcast to
    np.testing.assert_array_equal(
        ratio_or_zero(np.array([1, 3]), np.array([[2], [0], [4]])),
        [[0.5, 1.5], [0.0, 0.0], [0.25, 0.75]],
    )
    np.testing.assert_array_equal(
        ratio_or_zero(np.ones((2, 2)), np.array([[2.0], [0.0]])), [[0.5, 0.5], [0, 0]]
    )
