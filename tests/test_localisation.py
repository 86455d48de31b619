from __future__ import annotations

import numpy as np
import pytest

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


def test_peaks_in_chunks_equal_peaks_at_once_and_are_integers() -> None:
    maps = np.random.default_rng(0).random((5, 6, 6)).astype(np.float32)
    at_once = map_peaks(maps, 48)
    assert at_once.dtype.kind == "i"
    np.testing.assert_array_equal(map_peaks(maps, 48, chunk=2), at_once)
    assert (at_once >= 0).all() and (at_once < 48).all()


def test_rows_without_a_mask_are_skipped_not_the_end_and_lengths_must_match() -> None:
    mask = np.zeros((224, 224), bool)
    mask[100, 100] = True
    masks = [None, mask, np.zeros((224, 224), bool), mask]
    # peaks exactly 15 px from the mask pixel hit (the tolerance is inclusive); 16 px miss
    peaks = np.array([[0, 0], [115, 100], [0, 0], [100, 116]])
    hits = pointing_hits(peaks, masks, 224)
    assert np.isnan(hits[0]) and np.isnan(hits[2])
    assert hits[1] == 1.0 and hits[3] == 0.0
    maps = np.ones((4, 7, 7), np.float32)
    shares = energy_in_mask(maps, masks)
    assert np.isnan(shares[0]) and np.isnan(shares[2])
    assert shares[1] == pytest.approx(1 / 224**2) and shares[3] == shares[1]
    with pytest.raises(ValueError):
        pointing_hits(peaks, masks[:3], 224)
    with pytest.raises(ValueError):
        energy_in_mask(maps, masks[:3])


def test_a_transformer_s_cells_peak_and_weigh_on_their_patch_centres() -> None:
    from cam_core.methods.placement import PATCHES, upsample_maps

    maps = np.zeros((1, 4, 4), np.float32)
    maps[0, 1, 2] = 5.0
    # stride 16: the receptive-field centre of cell (row 1, col 2) is (32, 16); its patch's
    # centre is 7.5 px further right and down (the first of the two tied pixels wins)
    assert map_peaks(maps, 64).tolist() == [[32, 16]]
    assert map_peaks(maps, 64, placement=PATCHES).tolist() == [[39, 23]]
    hot = np.zeros((1, 2, 2), np.float32)
    hot[0, 0, 0] = 1.0
    mask = np.zeros((8, 8), bool)
    mask[:2, :2] = True
    up = upsample_maps(hot[0], mask.shape, PATCHES)
    share = energy_in_mask(hot, [mask], placement=PATCHES)[0]
    assert share == pytest.approx(up[mask].sum() / up.sum())
    assert share != pytest.approx(energy_in_mask(hot, [mask])[0])
