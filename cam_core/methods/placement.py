"""Where a map's cells lie on the image: every method's maps are placed the same way.

Two placements: a CNN's cell lies on its receptive field's centre (:data:`RECEPTIVE_FIELD`);
a transformer's cell is a patch and lies on the patch's centre (:data:`PATCHES`). The model
decides which (:func:`cam_core.methods.tokens.placement_of`); the analysis records it with each
method's maps, and every reader places the maps by it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PATCHES", "PLACEMENTS", "RECEPTIVE_FIELD", "cell_centre", "upsample_maps"]

RECEPTIVE_FIELD = "receptive-field"
"""Cell ``i`` on pixel ``stride * i`` (same-padded convolutions)."""
PATCHES = "patches"
"""Cell ``i`` covers pixels ``stride * i .. stride * (i + 1) - 1``: on pixel
``stride * i + (stride - 1) / 2``."""
PLACEMENTS = (RECEPTIVE_FIELD, PATCHES)


def cell_centre(
    index: float, n_cells: int, n_pixels: int, placement: str = RECEPTIVE_FIELD
) -> float:
    """The pixel coordinate (pixel ``k`` centred on ``k``) of cell ``index``'s centre."""
    stride = n_pixels / n_cells
    offset = (stride - 1) / 2 if placement == PATCHES else 0.0
    return index * stride + offset


def _source_coordinates(
    n_out: int, n_in: int, placement: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``n_out`` pixels: the two map cells around it and the weight of the second.

    Pixel ``p`` sits at map coordinate ``p * n_in / n_out`` (cell ``i`` on pixel
    ``stride * i``), or ``(p + 0.5) * n_in / n_out - 0.5`` for patches (cell ``i`` on its
    patch's centre); held at the first and last cells beyond them.
    """
    source = np.arange(n_out, dtype=np.float64) * n_in / n_out
    if placement == PATCHES:
        source = source + 0.5 * n_in / n_out - 0.5
    elif placement != RECEPTIVE_FIELD:
        raise ValueError(f"unknown placement {placement!r}; use one of {', '.join(PLACEMENTS)}")
    source = np.clip(source, 0, n_in - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (source - low).astype(np.float32)


def upsample_maps(
    maps: np.ndarray, size: tuple[int, int], placement: str = RECEPTIVE_FIELD
) -> np.ndarray:
    """Bilinearly resample maps onto image pixels, each cell on its receptive field's centre.

    A stack of same-padded convolutions with total stride ``s`` computes cell ``(i, j)`` from a
    window centred on pixel ``(s*i, s*j)``. Stretching the grid over the image instead (as
    ``F.interpolate(align_corners=False)`` or an image extent does) would put that value
    ``(s - 1) / 2`` pixels further right and down: 3.5 px for the demo CNN, 15.5 px for a
    ResNet at 512 px. ``s`` is taken as ``H / h``, exact when the input side is a multiple of
    the network's stride (every preset); beyond the last centre the edge value is held.
    Transformer maps (``placement=PATCHES``) put each cell on its patch's centre instead.

    Args:
        maps: ``(h, w)``, ``(K, h, w)`` or ``(N, K, h, w)``.
        size: target ``(H, W)``.
        placement: :data:`RECEPTIVE_FIELD` or :data:`PATCHES`.

    Returns:
        float32 array with the same leading shape and trailing ``(H, W)``.
    """
    values = np.asarray(maps, dtype=np.float32)
    height, width = values.shape[-2:]
    top, bottom, fy = _source_coordinates(size[0], height, placement)
    left, right, fx = _source_coordinates(size[1], width, placement)
    rows = values[..., top, :] * (1 - fy)[:, None] + values[..., bottom, :] * fy[:, None]
    return np.ascontiguousarray(rows[..., left] * (1 - fx) + rows[..., right] * fx)
