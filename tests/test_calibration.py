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


def test_bin_edges_values_on_an_edge_and_the_extremes() -> None:
    # right-closed bins: 0.5 lies in (0.4, 0.5]; 0.0 in the first bin, 1.0 in the last
    table = _table([0.0, 0.05, 0.5, 0.5001, 1.0, 0.75], [True, False, True, True, False, True])
    bins = reliability_bins(table)
    assert len(bins) == 10
    assert bins["low"].tolist() == pytest.approx([i / 10 for i in range(10)])
    assert bins["high"].tolist() == pytest.approx([i / 10 for i in range(1, 11)])
    assert bins["count"].tolist() == [2, 0, 0, 0, 1, 1, 0, 1, 0, 1]
    assert bins.iloc[0]["accuracy"] == 0.5 and bins.iloc[0]["confidence"] == pytest.approx(0.025)
    assert bins.iloc[9]["accuracy"] == 0.0 and bins.iloc[9]["gap"] == pytest.approx(-1.0)
    assert np.isnan(bins.iloc[1]["gap"]) and np.isnan(bins.iloc[1]["confidence"])


def test_bin_counts_and_ece_with_few_bins_and_single_members() -> None:
    table = _table([0.3, 0.8, 0.9], [False, True, False])
    one = reliability_bins(table, n_bins=1)
    assert one["count"].tolist() == [3] and one.iloc[0]["accuracy"] == pytest.approx(1 / 3)
    two = reliability_bins(table, n_bins=2)
    assert two["count"].tolist() == [1, 2]
    # bins: {0.3: wrong} gap 0.3, {0.8 right, 0.9 wrong} gap |0.5 - 0.85|
    assert expected_calibration_error(table, 2) == pytest.approx((0.3 + 2 * 0.35) / 3)
    assert expected_calibration_error(table) == expected_calibration_error(table, 10)
    assert expected_calibration_error(table) == pytest.approx((0.3 + 0.2 + 0.9) / 3)
    single = _table([0.7], [True])
    assert expected_calibration_error(single) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins(table, n_bins=0)


def test_empty_bins_raise_no_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bins = reliability_bins(_table([0.95], [True]))
    assert bins["count"].sum() == 1


def test_confidently_wrong_includes_the_threshold_and_keeps_ties_in_table_order() -> None:
    rng = np.random.default_rng(0)
    conf = rng.choice([0.9, 0.95, 0.99], 200)
    table = _table(list(conf), [False] * 200)
    wrong = confidently_wrong(table, 0.9)
    assert len(wrong) == 200  # 0.9 itself counts as confident
    for value in (0.99, 0.95, 0.9):
        paths = wrong[wrong["confidence"] == value]["path"].astype(int).tolist()
        assert paths == sorted(paths)
    assert wrong["confidence"].is_monotonic_decreasing


def test_the_default_is_ten_bins() -> None:
    # 0.905 and 0.95 share the last of 10 bins but not of 11
    table = _table([0.905, 0.95], [False, True])
    assert expected_calibration_error(table) == pytest.approx(abs(0.5 - 0.9275))
    assert expected_calibration_error(table, 11) == pytest.approx((0.905 + 0.05) / 2)
