from __future__ import annotations

import numpy as np
import pytest

from cam_core.evaluation.baselines import baseline_maps


def test_random_maps_are_seeded_and_centre_maps_peak_in_the_middle() -> None:
    first = baseline_maps("random", 3, 5, 5, seed=4)
    assert first.shape == (3, 5, 5) and first.dtype == np.float32
    assert np.array_equal(first, baseline_maps("random", 3, 5, 5, seed=4))
    assert not np.array_equal(first, baseline_maps("random", 3, 5, 5, seed=5))
    centre = baseline_maps("centre", 2, 5, 7)
    assert np.unravel_index(centre[0].argmax(), (5, 7)) == (2, 3)
    assert np.array_equal(centre[0], centre[1])
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_maps("zeros", 1, 2, 2)


def test_centre_map_is_a_gaussian_with_sigma_a_quarter_of_each_side() -> None:
    height, width = 9, 13
    centre = baseline_maps("centre", 1, height, width)[0]
    assert centre.dtype == np.float32
    assert centre[4, 6] == pytest.approx(1.0)
    # one sigma from the centre along each axis: exp(-1/2)
    sigma_y, sigma_x = height / 4, width / 4
    ys = np.arange(height) - 4
    xs = np.arange(width) - 6
    expected = np.exp(-0.5 * ((ys[:, None] / sigma_y) ** 2 + (xs[None, :] / sigma_x) ** 2))
    np.testing.assert_allclose(centre, expected, rtol=1e-6)
    assert centre[0, 6] == pytest.approx(np.exp(-0.5 * (4 / sigma_y) ** 2), rel=1e-6)


def test_random_maps_default_seed_is_zero() -> None:
    expected = np.random.default_rng(0).random((2, 3, 4), dtype=np.float32)
    assert np.array_equal(baseline_maps("random", 2, 3, 4), expected)
