"""Maps that know nothing: a seeded random map and a centred Gaussian. A method's scores mean
something only where they beat these."""

from __future__ import annotations

import numpy as np

__all__ = ["BASELINES", "baseline_maps"]

BASELINES = ("random", "centre")


def baseline_maps(kind: str, n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``n`` baseline maps ``(n, h, w)`` float32.

    Args:
        kind: ``"random"`` (uniform noise, seeded) or ``"centre"`` (a Gaussian on the image
            centre with sigma a quarter of the side, the same for every image).
        n, height, width: shape.
        seed: seed of the random maps.

    Raises:
        ValueError: unknown kind.
    """
    if kind == "random":
        return np.random.default_rng(seed).random((n, height, width), dtype=np.float32)
    if kind == "centre":
        ys = (np.arange(height) - (height - 1) / 2) / (height / 4)
        xs = (np.arange(width) - (width - 1) / 2) / (width / 4)
        bump = np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2)).astype(np.float32)
        return np.broadcast_to(bump, (n, height, width)).copy()
    raise ValueError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINES)}")
