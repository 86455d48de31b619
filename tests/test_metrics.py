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
