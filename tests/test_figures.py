from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from cam_core.present.figures import (
    class_map_figure,
    confidence_histogram,
    confusion_figure,
    difference_figure,
    figure_html,
    probability_figure,
)


def _view() -> Image.Image:
    return Image.new("RGB", (64, 64), (120, 130, 140))


def test_confusion_figure_cells_carry_true_and_predicted() -> None:
    matrix = pd.DataFrame([[5, 1], [2, 7]], index=["cat", "dog"], columns=["cat", "dog"])
    figure = confusion_figure(matrix)
    heat, points = figure.data
    assert isinstance(heat, go.Heatmap) and isinstance(points, go.Scatter)
    assert np.allclose(heat.z, [[5 / 6, 1 / 6], [2 / 9, 7 / 9]])
    assert [list(c) for c in points.customdata] == [
        ["cat", "cat", 5],
        ["cat", "dog", 1],
        ["dog", "cat", 2],
        ["dog", "dog", 7],
    ]


def test_class_map_hover_gives_value_and_logit_contribution() -> None:
    cam = np.arange(16, dtype=np.float32).reshape(4, 4)
    figure = class_map_figure(cam, _view(), "cat", "Viridis", 0.4)
    image, heat = figure.data
    assert isinstance(image, go.Image) and image.source.startswith("data:image/png;base64,")
    assert heat.opacity == 0.4 and heat.colorscale[0][1].lower().startswith("#440154")
    contribution = np.asarray(heat.customdata)[..., 0]
    assert np.isclose(contribution.sum(), cam.mean())
    # Cell i is drawn around pixel 16 * i, its receptive field's centre, and the cells tile
    # the whole image (pixel k spans k - 0.5 .. k + 0.5).
    assert list(heat.x) == list(heat.y) == [-0.5, 8.0, 24.0, 40.0, 63.5]
    assert figure.layout.xaxis.range == (-0.5, 63.5)
    assert "logit contribution" in heat.hovertemplate


def test_difference_map_title_states_the_margin() -> None:
    a = np.full((3, 3), 2.0, np.float32)
    b = np.full((3, 3), 0.5, np.float32)
    figure = difference_figure(a, b, _view(), "cat", "dog")
    heat = figure.data[1]
    assert np.allclose(heat.z, 1.5) and heat.zmid == 0.0
    assert "+1.500" in figure.layout.title.text


def test_probability_and_histogram_figures() -> None:
    bars = probability_figure(("cat", "dog", "fox"), np.array([0.2, 0.7, 0.1]))
    assert list(bars.data[0].y) == ["dog", "cat", "fox"]
    table = pd.DataFrame({"confidence": [0.9, 0.6, 0.99], "correct": [True, False, True]})
    hist = confidence_histogram(table)
    assert [t.name for t in hist.data] == ["correct (2)", "wrong (1)"]


def test_standalone_html_inlines_plotly() -> None:
    html = figure_html(probability_figure(("a", "b"), np.array([0.4, 0.6])))
    assert html.lower().startswith("<!doctype html>")
    assert len(html) > 1_000_000  # plotly.js is inlined, so it works offline
    assert "<script src=" not in html
