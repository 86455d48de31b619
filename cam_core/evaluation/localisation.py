"""Does the map point at the right part? Pointing game and energy inside the ground-truth mask."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cam_core.methods.placement import RECEPTIVE_FIELD, upsample_maps

__all__ = [
    "POINTING_SCALE_PX",
    "POINTING_TOLERANCE_PX",
    "energy_in_mask",
    "map_peaks",
    "pointing_hits",
]

POINTING_SCALE_PX = 224
POINTING_TOLERANCE_PX = 15.0


def map_peaks(
    maps: np.ndarray, image_size: int, chunk: int = 256, placement: str = RECEPTIVE_FIELD
) -> np.ndarray:
    """Where each map peaks, in model-input pixels after resampling (cells on their centres).

    Args:
        maps: ``(N, h, w)`` one map per image.
        image_size: side of the model input.
        chunk: maps resampled at a time (bounds memory).
        placement: where the cells lie (:mod:`cam_core.methods.placement`).

    Returns:
        int array ``(N, 2)`` of ``(x, y)``.
    """
    peaks = np.zeros((len(maps), 2), dtype=int)
    for start in range(0, len(maps), chunk):
        up = upsample_maps(maps[start : start + chunk], (image_size, image_size), placement)
        flat = up.reshape(len(up), -1).argmax(axis=1)
        peaks[start : start + chunk, 0] = flat % image_size
        peaks[start : start + chunk, 1] = flat // image_size
    return peaks


def pointing_hits(
    peaks: np.ndarray,
    masks: Sequence[np.ndarray | None],
    image_size: int,
    tolerance_px: float = POINTING_TOLERANCE_PX,
) -> np.ndarray:
    """Pointing game: is each peak within ``tolerance_px`` (at 224 px scale) of its mask?

    Args:
        peaks: ``(N, 2)`` of ``(x, y)`` from :func:`map_peaks`.
        masks: bool ``(S, S)`` masks at the model input's size, ``None`` where there is none.
        image_size: ``S``.
        tolerance_px: allowed distance at 224-px scale.

    Returns:
        float array ``(N,)``: 1.0 hit, 0.0 miss, NaN where there is no mask (or an empty one).
    """
    limit = tolerance_px * image_size / POINTING_SCALE_PX
    hits = np.full(len(peaks), np.nan)
    for row, (peak, mask) in enumerate(zip(peaks, masks, strict=True)):
        if mask is None or not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        hits[row] = float(np.hypot(xs - peak[0], ys - peak[1]).min() <= limit)
    return hits


def energy_in_mask(
    maps: np.ndarray, masks: Sequence[np.ndarray | None], placement: str = RECEPTIVE_FIELD
) -> np.ndarray:
    """Share of each map's positive mass that lies inside its mask (energy-based pointing game).

    Args:
        maps: ``(N, h, w)``; resampled onto each mask's pixels.
        masks: bool ``(S, S)`` masks, ``None`` where there is none.
        placement: where the cells lie (:mod:`cam_core.methods.placement`).

    Returns:
        float array ``(N,)`` in 0..1; NaN without a mask or without positive mass.
    """
    shares = np.full(len(maps), np.nan)
    for row, (single, mask) in enumerate(zip(maps, masks, strict=True)):
        if mask is None or not mask.any():
            continue
        positive = np.maximum(upsample_maps(single, mask.shape, placement), 0.0)
        total = float(positive.sum())
        if total > 0:
            shares[row] = float(positive[mask].sum()) / total
    return shares
