"""A 2-D map of the analysed images' features, computed once at analysis time.

openTSNE's FFT-accelerated t-SNE (chosen by measurement, see the README: no JIT compilation,
2 s for the demo's 400 images against 14 s for UMAP, 29 s against 64 s at 10,000) is fitted
on at most :data:`FIT_MAX` images; every other image, and every uploaded photo, is placed at
the distance-weighted mean of its nearest fitted neighbours in feature space.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cam_core.evaluation.familiarity import normalised

__all__ = ["FIT_MAX", "PLACE_K", "EmbeddingResult", "embed", "fitted_rows", "place"]

log = logging.getLogger(__name__)

FIT_MAX = 20_000
"""Most images t-SNE is fitted on; the others are placed by their neighbours."""
PLACE_K = 10
"""Fitted neighbours that place an image that was not fitted."""


@dataclass(frozen=True)
class EmbeddingResult:
    """Coordinates ``(N, 2)`` float32 and how they were made (the manifest's block)."""

    coords: np.ndarray
    info: dict[str, Any]


def fitted_rows(n: int, seed: int = 0, fit_max: int = FIT_MAX) -> np.ndarray:
    """The rows t-SNE is fitted on: all, or a seeded sample of ``fit_max`` (sorted)."""
    if n <= fit_max:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=fit_max, replace=False))


def place(
    features: np.ndarray, fitted_features: np.ndarray, fitted_coords: np.ndarray, k: int = PLACE_K
) -> np.ndarray:
    """Coordinates ``(n, 2)`` for images that were not fitted: the mean of their ``k`` nearest
    fitted images' coordinates, weighted by inverse cosine distance.

    Args:
        features: ``(n, C)`` features of the images to place.
        fitted_features: ``(m, C)`` features of the fitted images.
        fitted_coords: ``(m, 2)`` their coordinates.
        k: neighbours (at most ``m``).
    """
    if len(features) == 0:
        return np.zeros((0, 2), np.float32)
    query, known = normalised(features), normalised(fitted_features)
    k = max(1, min(k, len(known)))
    placed = np.empty((len(query), 2), np.float32)
    for start in range(0, len(query), 4096):
        similarity = query[start : start + 4096] @ known.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        distance = 1.0 - np.take_along_axis(similarity, nearest, axis=1)
        weights = 1.0 / np.maximum(distance, 1e-6)
        weights /= weights.sum(axis=1, keepdims=True)
        placed[start : start + 4096] = np.einsum("nk,nkd->nd", weights, fitted_coords[nearest])
    return placed


def embed(features: np.ndarray, seed: int = 0, fit_max: int = FIT_MAX) -> EmbeddingResult:
    """The 2-D map of ``features`` ``(N, C)``.

    Fewer than 5 images, or features that are all alike, get a line (t-SNE needs more, and
    would give NaN); the map is seeded, but float results (and so the exact layout) differ
    between machines.
    """
    start = time.perf_counter()
    n = len(features)
    rows = fitted_rows(n, seed, fit_max)
    coords = np.zeros((n, 2), np.float32)
    info: dict[str, Any] = {"method": "t-SNE (openTSNE)", "fitted": len(rows), "seed": seed}
    spread = float(np.ptp(np.asarray(features, dtype=np.float32), axis=0).max()) if n else 0.0
    if n >= 5 and spread > 0:
        from openTSNE import TSNE

        perplexity = float(min(30.0, (len(rows) - 1) / 3))
        fitted = TSNE(perplexity=perplexity, n_jobs=-1, random_state=seed, verbose=False).fit(
            normalised(features[rows])
        )
        coords[rows] = np.asarray(fitted, dtype=np.float32)
        info["perplexity"] = perplexity
        rest = np.setdiff1d(np.arange(n), rows)
        if len(rest):
            coords[rest] = place(features[rest], features[rows], coords[rows])
    else:  # too few images, or features that are all alike (an untrained model): a line
        coords[:, 0] = np.arange(n, dtype=np.float32)
    info["seconds"] = round(time.perf_counter() - start, 3)
    log.info("embedding of %d images in %.1f s", n, info["seconds"])
    return EmbeddingResult(coords, info)
