"""Reliability bins, expected calibration error and the confidently wrong list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cam_core.review.calibration import (
    confidently_wrong,
    expected_calibration_error,
    reliability_bins,
)


def _table(conf: list[float], correct: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {"confidence": conf, "correct": correct, "path": [str(i) for i in range(len(conf))]}
    )


def test_bins_and_ece_by_hand() -> None:
    table = _table([0.55, 0.58, 0.95, 0.99, 0.92], [True, False, True, True, False])
    bins = reliability_bins(table, n_bins=10)
    assert len(bins) == 10 and bins["count"].sum() == 5
    fifth = bins.iloc[5]  # (0.5, 0.6]
    assert fifth["count"] == 2 and fifth["accuracy"] == 0.5
    assert fifth["confidence"] == pytest.approx(0.565)
    last = bins.iloc[9]
    assert last["count"] == 3 and last["accuracy"] == pytest.approx(2 / 3)
    assert np.isnan(bins.iloc[0]["accuracy"])
    expected = (2 * abs(0.5 - 0.565) + 3 * abs(2 / 3 - (0.95 + 0.99 + 0.92) / 3)) / 5
    assert expected_calibration_error(table, 10) == pytest.approx(expected)


def test_a_calibrated_model_has_small_ece_and_an_overconfident_one_large() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 20000)
    calibrated = _table(list(conf), list(rng.uniform(size=conf.size) < conf))
    over = _table(list(conf), list(rng.uniform(size=conf.size) < conf - 0.2))
    assert expected_calibration_error(calibrated) < 0.02
    assert expected_calibration_error(over) == pytest.approx(0.2, abs=0.02)


def test_confidently_wrong_is_sorted_and_thresholded() -> None:
    table = _table([0.55, 0.97, 0.91, 0.99], [False, False, False, True])
    wrong = confidently_wrong(table, 0.9)
    assert wrong["path"].tolist() == ["1", "2"]
    assert confidently_wrong(table, 0.999).empty
    assert np.isnan(expected_calibration_error(table.iloc[:0]))
