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
