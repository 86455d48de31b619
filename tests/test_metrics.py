from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cam_core.metrics import confusion_matrix, map_peaks, per_class_scores, pointing_hits, summary


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
    stats = summary(_table())
    assert stats["accuracy"] == 4 / 6 and stats["n_errors"] == 2


def test_pointing_game_uses_a_224_px_tolerance(tmp_path: Path) -> None:
    mask = np.zeros((112, 112), np.uint8)
    mask[10:20, 10:20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    # At 112 px, 15 px at 224 scale is 7.5 px.
    peaks = np.array([[15, 15], [26, 15], [28, 15], [90, 90]])
    hits = pointing_hits(peaks, [tmp_path / "m.png"] * 3 + [None], 112)
    assert hits[:3].tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(hits[3])


def test_map_peaks_find_the_hot_cell() -> None:
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, 0, 3] = 5.0
    maps[1, 3, 0] = 5.0
    peaks = map_peaks(maps, 64)
    # (x, y) of the hot cell's receptive-field centre: stride 16, cell (row, col) -> 16 * (col, row)
    assert peaks.tolist() == [[48, 0], [0, 48]]
