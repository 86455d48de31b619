from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cam_core.present.overlay import COLORSCALES, colour_lut, normalise, overlay


@pytest.mark.parametrize("name", COLORSCALES)
def test_every_offered_colour_scale_has_a_lut(name: str) -> None:
    lut = colour_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert len({tuple(c) for c in lut}) > 50


def test_overlay_blends_by_opacity() -> None:
    image = Image.new("RGB", (32, 32), (0, 0, 0))
    cam = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    none = np.asarray(overlay(image, cam, "Jet", 0.0))
    full = np.asarray(overlay(image, cam, "Jet", 1.0))
    half = np.asarray(overlay(image, cam, "Jet", 0.5)).astype(int)
    assert none.max() == 0
    assert tuple(full[0, -1]) == tuple(colour_lut("Jet")[255])
    assert np.abs(half - full.astype(int) / 2).max() <= 1
    with pytest.raises(ValueError):
        overlay(image, cam, "Jet", 1.5)
    with pytest.raises(ValueError, match="unknown colour scale"):
        colour_lut("NoSuchScale")


def test_normalise_handles_flat_maps() -> None:
    assert normalise(np.ones((3, 3))).max() == 0
    assert np.allclose(normalise(np.array([1.0, 3.0])), [0.0, 1.0])
