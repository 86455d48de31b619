"""The class budget: which classes get maps, and reading maps stored under a budget."""

from __future__ import annotations

import numpy as np
import pytest

from cam_core.methods.budget import (
    budget_classes,
    every_class,
    maps_for,
    parse_budget,
    slots_of,
)


def test_the_budget_is_truth_then_most_probable_without_repeats() -> None:
    logits = np.array(
        [
            [0.1, 3.0, 2.0, -1.0, 0.5],  # truth 3 is unlikely: 3, then 1, 2
            [5.0, 1.0, 4.0, 0.0, 2.0],  # truth 0 is the prediction: 0, then 2, 4
            [0.0, 1.0, 2.0, 3.0, 4.0],  # truth unknown: 4, 3, 2
        ]
    )
    chosen = budget_classes(logits, np.array([3, 0, -1]), 3)
    assert chosen is not None and chosen.tolist() == [[3, 1, 2], [0, 2, 4], [4, 3, 2]]
    without_truth = budget_classes(logits, None, 2)
    assert without_truth is not None and without_truth.tolist() == [[1, 2], [0, 2], [4, 3]]


def test_a_budget_that_covers_every_class_stores_every_class() -> None:
    logits = np.zeros((4, 3))
    assert budget_classes(logits, None, 3) is None
    assert budget_classes(logits, None, 7) is None
    assert budget_classes(logits, None, None) is None


def test_parse_budget() -> None:
    assert parse_budget("3") == 3
    assert parse_budget(" ALL ") is None
    for bad in ("0", "-2", "three", "2.5"):
        with pytest.raises(ValueError, match="classes per image"):
            parse_budget(bad)


def test_maps_of_a_class_are_read_from_its_slot_or_missing() -> None:
    values = np.arange(3 * 2 * 2 * 2, dtype=np.float32).reshape(3, 2, 2, 2)
    classes = np.array([[4, 1], [0, 4], [2, 3]])
    rows = np.array([0, 1, 2, 0])
    targets = np.array([1, 4, 1, 4])
    assert slots_of(classes, rows, targets).tolist() == [1, 1, -1, 0]
    got = maps_for(values, classes, rows, targets)
    assert np.array_equal(got[0], values[0, 1])
    assert np.array_equal(got[1], values[1, 1])
    assert np.isnan(got[2]).all()
    assert np.array_equal(got[3], values[0, 0])
    # Without a slot file, slot k is class k.
    assert np.array_equal(maps_for(values, None, np.array([2]), np.array([1]))[0], values[2, 1])


def test_one_image_laid_out_by_class() -> None:
    values = np.stack([np.full((2, 2), 7.0), np.full((2, 2), 9.0)])
    laid = every_class(values, np.array([3, 0]), 4)
    assert laid.shape == (4, 2, 2)
    assert (laid[3] == 7).all() and (laid[0] == 9).all()
    assert np.isnan(laid[1]).all() and np.isnan(laid[2]).all()
    assert np.array_equal(every_class(values, None, 2), values)
