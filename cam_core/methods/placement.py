"""Where a map's cells lie on the image: every method's maps are placed the same way."""

from __future__ import annotations

import numpy as np

__all__ = ["upsample_maps"]


def _source_coordinates(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``n_out`` pixels: the two map cells around it and the weight of the second.

    Pixel ``p`` sits at map coordinate ``p * n_in / n_out`` (cell ``i`` on pixel
    ``stride * i``), held at the last cell beyond it.
    """
    source = np.minimum(np.arange(n_out, dtype=np.float64) * n_in / n_out, n_in - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (source - low).astype(np.float32)


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resample maps onto image pixels, each cell on its receptive field's centre.

    A stack of same-padded convolutions with total stride ``s`` computes cell ``(i, j)`` from a
    window centred on pixel ``(s*i, s*j)``. Stretching the grid over the image instead (as
    ``F.interpolate(align_corners=False)`` or an image extent does) would put that value
    ``(s - 1) / 2`` pixels further right and down: 3.5 px for the demo CNN, 15.5 px for a
    ResNet at 512 px. ``s`` is taken as ``H / h``, exact when the input side is a multiple of
    the network's stride (every preset); beyond the last centre the edge value is held.

    Args:
        maps: ``(h, w)``, ``(K, h, w)`` or ``(N, K, h, w)``.
        size: target ``(H, W)``.

    Returns:
        float32 array with the same leading shape and trailing ``(H, W)``.
    """
    values = np.asarray(maps, dtype=np.float32)
    height, width = values.shape[-2:]
    top, bottom, fy = _source_coordinates(size[0], height)
    left, right, fx = _source_coordinates(size[1], width)
    rows = values[..., top, :] * (1 - fy)[:, None] + values[..., bottom, :] * fy[:, None]
    return np.ascontiguousarray(rows[..., left] * (1 - fx) + rows[..., right] * fx)
