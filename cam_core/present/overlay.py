"""Heatmap overlays as images (PNG), with the same colour scales as the Plotly figures."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image
from plotly import colors as plotly_colors

from cam_core.methods.placement import RECEPTIVE_FIELD, upsample_maps

__all__ = ["COLORSCALES", "colour_lut", "encode_png", "normalise", "overlay"]

COLORSCALES = ("Jet", "Viridis", "Inferno", "Turbo", "Hot", "Cividis")


@functools.lru_cache(maxsize=16)
def colour_lut(name: str) -> np.ndarray:
    """A 256-entry RGB lookup table sampled from a Plotly colour scale.

    Raises:
        ValueError: unknown colour scale name.
    """
    try:
        scale = plotly_colors.get_colorscale(name)
    except Exception as exc:
        raise ValueError(
            f"unknown colour scale {name!r}; try one of {', '.join(COLORSCALES)}"
        ) from exc
    samples = plotly_colors.sample_colorscale(scale, list(np.linspace(0.0, 1.0, 256)))
    rows = [
        plotly_colors.unlabel_rgb(plotly_colors.convert_colors_to_same_type(s, "rgb")[0][0])
        for s in samples
    ]
    return np.clip(np.rint(np.array(rows, dtype=np.float64)), 0, 255).astype(np.uint8)


def normalise(cam: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Scale a map to [0, 1] over ``[vmin, vmax]`` (default: the map's own range)."""
    cam = np.asarray(cam, dtype=np.float32)
    low = float(cam.min()) if vmin is None else vmin
    high = float(cam.max()) if vmax is None else vmax
    if high <= low:
        return np.zeros_like(cam)
    return np.clip((cam - low) / (high - low), 0.0, 1.0)


def overlay(
    image: Image.Image,
    cam: np.ndarray,
    colorscale: str = "Jet",
    opacity: float = 0.5,
    vmin: float | None = None,
    vmax: float | None = None,
    placement: str = RECEPTIVE_FIELD,
) -> Image.Image:
    """Blend a coloured map over an image.

    Args:
        image: RGB image the map belongs to (the model-input view).
        cam: map ``(h, w)`` at feature resolution; upsampled bilinearly to the image.
        colorscale: a Plotly colour scale name.
        opacity: weight of the heatmap, 0 (image only) to 1 (heatmap only).
        vmin, vmax: value range mapped to the colour scale (default: the map's range).
        placement: where the cells lie (the method record's ``placement``).

    Returns:
        RGB image of the same size as ``image``; the image alone where the map is missing
        (all NaN: a class outside the method's class budget).
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity}")
    if np.isnan(cam).all():
        return image.convert("RGB")
    up = upsample_maps(cam, (image.height, image.width), placement)
    index = np.rint(normalise(up, vmin, vmax) * 255).astype(np.uint8)
    heat = colour_lut(colorscale)[index].astype(np.float32)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    blended = (1.0 - opacity) * base + opacity * heat
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of an image."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
