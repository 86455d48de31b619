"""The 2-D map: t-SNE keeps neighbours together, the rest and new images are placed by their
neighbours, and degenerate input still gives finite coordinates."""

from __future__ import annotations

import numpy as np

from cam_core.analysis.embedding import embed, fitted_rows, place


def test_clusters_stay_apart_and_unfitted_images_land_by_their_neighbours() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 16)) * 5
    labels = np.repeat(np.arange(3), 40)
    features = (centres[labels] + rng.standard_normal((120, 16)) * 0.2).astype(np.float16)
    result = embed(features, seed=0, fit_max=60)
    coords = result.coords
    assert coords.shape == (120, 2) and np.isfinite(coords).all()
    assert result.info["fitted"] == 60 and result.info["method"].startswith("t-SNE")
    means = np.stack([coords[labels == k].mean(axis=0) for k in range(3)])
    within = max(np.linalg.norm(coords[labels == k] - means[k], axis=1).mean() for k in range(3))
    between = min(np.linalg.norm(means[a] - means[b]) for a in range(3) for b in range(a + 1, 3))
    assert between > 3 * within
    fitted = fitted_rows(120, 0, 60)
    assert len(fitted) == 60 and list(fitted) == sorted(set(fitted.tolist()))
    # A copy of an image is placed where that image is.
    again = place(features[fitted[:5]], features[fitted], coords[fitted], k=1)
    np.testing.assert_allclose(again, coords[fitted[:5]], atol=1e-4)


def test_degenerate_features_give_a_line_not_nan() -> None:
    flat = embed(np.ones((10, 4), np.float16))
    assert np.isfinite(flat.coords).all() and list(flat.coords[:, 0]) == list(range(10))
    assert embed(np.zeros((3, 4))).coords.shape == (3, 2)
    assert place(np.zeros((0, 4)), np.ones((2, 4)), np.zeros((2, 2))).shape == (0, 2)
