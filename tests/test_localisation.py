from __future__ import annotations

import numpy as np

from cam_core.evaluation.localisation import energy_in_mask, map_peaks, pointing_hits


def test_pointing_game_uses_a_224_px_tolerance() -> None:
    mask = np.zeros((112, 112), bool)
    mask[10:20, 10:20] = True
    # At 112 px, 15 px at 224 scale is 7.5 px.
    peaks = np.array([[15, 15], [26, 15], [28, 15], [90, 90], [15, 15]])
    hits = pointing_hits(peaks, [mask] * 3 + [None, np.zeros_like(mask)], 112)
    assert hits[:3].tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(hits[3]) and np.isnan(hits[4])


def test_map_peaks_find_the_hot_cell() -> None:
    maps = np.zeros((3, 4, 4), np.float32)
    maps[0, 0, 3] = 5.0
    maps[1, 3, 0] = 5.0
    maps[2, 1, 2] = 5.0
    # (x, y) of the hot cell's receptive-field centre: stride 16 -> 16 * (col, row)
    assert map_peaks(maps, 64, chunk=2).tolist() == [[48, 0], [0, 48], [32, 16]]


def test_energy_in_mask_is_the_positive_share_inside() -> None:
    maps = np.zeros((4, 2, 2), np.float32)
    maps[0] = [[1.0, 0.0], [0.0, 0.0]]  # all mass in the top-left cell
    maps[1] = [[0.0, 0.0], [0.0, 1.0]]  # all mass in the bottom-right cell
    maps[2] = -1.0  # no positive mass
    maps[3] = 1.0  # uniform
    mask = np.zeros((2, 2), bool)
    mask[0, 0] = True
    shares = energy_in_mask(maps, [mask, mask, mask, mask])
    assert shares[0] == 1.0 and shares[1] == 0.0
    assert np.isnan(shares[2]) and np.isclose(shares[3], 0.25)
    assert np.isnan(energy_in_mask(maps[:1], [None])[0])
