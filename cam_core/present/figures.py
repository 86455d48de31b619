"""Pure Plotly figure builders: arrays/tables in, ``plotly.graph_objects.Figure`` out.

Shared by the dashboard and the HTML report; nothing here reads files or knows Streamlit.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from cam_core.evaluation.metrics import confusion_shares
from cam_core.methods.placement import RECEPTIVE_FIELD, cell_centre
from cam_core.present.overlay import encode_png

__all__ = [
    "class_map_figure",
    "confidence_histogram",
    "confusion_figure",
    "difference_figure",
    "embedding_figure",
    "figure_html",
    "perturbation_figure",
    "probability_figure",
    "rate_bar_figure",
    "region_figure",
    "reliability_figure",
]

_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _png_data_uri(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def confusion_figure(matrix: pd.DataFrame, hover_hint: str = "") -> go.Figure:
    """Confusion matrix; each cell is also a clickable point carrying ``(true, predicted)``.

    Args:
        matrix: ``K×K`` counts, index = true class, columns = predicted class.
        hover_hint: a line added to each cell's hover text (e.g. what a click does).
    """
    true_names = [str(c) for c in matrix.index]
    pred_names = [str(c) for c in matrix.columns]
    counts = matrix.to_numpy()
    share = confusion_shares(matrix)
    figure = go.Figure(
        go.Heatmap(
            z=share,
            x=pred_names,
            y=true_names,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=[
                [f"{n}<br>{p:.0%}" for n, p in zip(row, prow, strict=True)]
                for row, prow in zip(counts, share, strict=True)
            ],
            texttemplate="%{text}",
            hoverinfo="skip",
            colorbar={"title": "share of row", "tickformat": ".0%"},
        )
    )
    xs, ys, custom = [], [], []
    for t in true_names:
        for p in pred_names:
            xs.append(p)
            ys.append(t)
            custom.append([t, p, int(matrix.loc[t, p])])
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            customdata=custom,
            marker={"size": 40, "opacity": 0.01, "symbol": "square"},
            hovertemplate="true %{customdata[0]} → predicted %{customdata[1]}: "
            f"%{{customdata[2]}} images<extra>{hover_hint}</extra>",
            showlegend=False,
        )
    )
    figure.update_layout(
        title="Confusion matrix (rows: true class)",
        xaxis={"title": "predicted", "side": "bottom", "type": "category"},
        yaxis={"title": "true", "autorange": "reversed", "type": "category"},
        margin=_MARGIN,
        clickmode="event+select",
    )
    return figure


def _cell_edges(cells: int, size: int, placement: str = RECEPTIVE_FIELD) -> list[float]:
    """Edges of ``cells`` cells centred as ``placement`` says (on ``i * size / cells`` for
    receptive fields, on patch centres for patches) that tile pixels 0..size-1."""
    centres = [cell_centre(i + 0.5, cells, size, placement) for i in range(cells - 1)]
    return [-0.5, *centres, size - 0.5]


def class_map_figure(
    cam: np.ndarray,
    view: Image.Image,
    title: str,
    colorscale: str = "Jet",
    opacity: float = 0.5,
    zmin: float | None = None,
    zmax: float | None = None,
    diverging: bool = False,
    placement: str = RECEPTIVE_FIELD,
) -> go.Figure:
    """One class map over its image; hover shows the cell value and its logit contribution.

    Args:
        cam: ``(h, w)`` map at feature resolution (each cell contributes ``value / (h*w)`` to
            the logit, because the logit is the map's mean).
        view: the model-input image ``(S, S)`` the map belongs to.
        title: figure title.
        colorscale: Plotly colour scale.
        opacity: heatmap opacity over the image.
        zmin, zmax: colour range (default: the map's own range).
        diverging: centre the colour scale on 0 (for difference maps).
        placement: where the cells lie (:mod:`cam_core.methods.placement`; the method
            record's ``placement``).
    """
    cam = np.asarray(cam, dtype=np.float32)
    h, w = cam.shape
    size = view.width
    contribution = cam / float(h * w)
    figure = go.Figure()
    figure.add_trace(go.Image(source=_png_data_uri(view), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    # Pixel k is centred on coordinate k; cell (i, j) is centred on its receptive field's centre,
    # pixel (j * stride, i * stride), or on its patch's centre for transformers, as in
    # cam_core.methods.placement.upsample_maps, and drawn
    # over the pixels nearer to it than to any other cell (so the edge cells are cut or widened).
    heat: dict[str, object] = {
        "z": cam,
        "x": _cell_edges(w, size, placement),
        "y": _cell_edges(h, size, placement),
        "colorscale": colorscale,
        "opacity": opacity,
        "customdata": np.stack(
            [contribution, np.indices((h, w))[0], np.indices((h, w))[1]], axis=-1
        ),
        "hovertemplate": "cell row %{customdata[1]}, col %{customdata[2]}<br>"
        "map value %{z:.3f}<br>logit contribution %{customdata[0]:+.4f}"
        "<extra></extra>",
        "colorbar": {"title": "value"},
    }
    if diverging:
        bound = float(np.abs(cam).max()) or 1.0
        heat.update({"zmid": 0.0, "zmin": -bound, "zmax": bound})
    else:
        if zmin is not None:
            heat["zmin"] = zmin
        if zmax is not None:
            heat["zmax"] = zmax
    figure.add_trace(go.Heatmap(**heat))
    figure.update_layout(
        title=title,
        xaxis={"visible": False, "range": [-0.5, size - 0.5], "constrain": "domain"},
        yaxis={"visible": False, "range": [size - 0.5, -0.5], "scaleanchor": "x"},
        margin=_MARGIN,
        height=420,
    )
    return figure


def difference_figure(
    cam_a: np.ndarray,
    cam_b: np.ndarray,
    view: Image.Image,
    name_a: str,
    name_b: str,
    opacity: float = 0.5,
    placement: str = RECEPTIVE_FIELD,
) -> go.Figure:
    """Signed map ``A − B``; its mean is the logit margin ``logit_A − logit_B``."""
    diff = np.asarray(cam_a, np.float32) - np.asarray(cam_b, np.float32)
    margin = float(diff.mean())
    return class_map_figure(
        diff,
        view,
        f"{name_a} − {name_b} (mean = logit margin {margin:+.3f})",
        colorscale="RdBu_r",
        opacity=opacity,
        diverging=True,
        placement=placement,
    )


def probability_figure(classes: Sequence[str], probs: np.ndarray) -> go.Figure:
    """Horizontal bars of class probabilities, highest first."""
    order = np.argsort(-np.asarray(probs))
    figure = go.Figure(
        go.Bar(
            x=[float(probs[i]) for i in order],
            y=[str(classes[i]) for i in order],
            orientation="h",
            text=[f"{probs[i]:.1%}" for i in order],
            textposition="auto",
            marker={"color": ["#1f77b4" if k == 0 else "#aab4c0" for k in range(len(order))]},
        )
    )
    figure.update_layout(
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability"},
        yaxis={"autorange": "reversed"},
        margin=_MARGIN,
        height=80 + 30 * len(classes),
        title="Probabilities",
    )
    return figure


def confidence_histogram(table: pd.DataFrame) -> go.Figure:
    """Confidence of correct vs wrong predictions."""
    figure = go.Figure()
    for correct, name, colour in ((True, "correct", "#2ca02c"), (False, "wrong", "#d62728")):
        values = table.loc[table["correct"] == correct, "confidence"]
        figure.add_trace(
            go.Histogram(
                x=values,
                name=f"{name} ({len(values)})",
                marker_color=colour,
                xbins={"start": 0, "end": 1.0001, "size": 0.05},
                opacity=0.75,
            )
        )
    figure.update_layout(
        barmode="overlay",
        title="Confidence of predictions",
        xaxis={"title": "confidence", "tickformat": ".0%"},
        yaxis={"title": "images"},
        margin=_MARGIN,
        height=320,
    )
    return figure


def figure_html(figure: go.Figure, include_plotlyjs: bool | str = True) -> str:
    """Standalone HTML of a figure (Plotly's JavaScript inlined by default: works offline)."""
    return figure.to_html(include_plotlyjs=include_plotlyjs, full_html=include_plotlyjs is True)


def perturbation_figure(
    fractions: np.ndarray, deletion: np.ndarray, insertion: np.ndarray, step: int, title: str
) -> go.Figure:
    """Deletion and insertion curves of one image, with the current step marked.

    Args:
        fractions: ``(steps + 1,)`` share of pixels removed / revealed.
        deletion, insertion: ``(steps + 1,)`` target-class probability.
        step: index of the step to mark.
        title: figure title.
    """
    figure = go.Figure()
    for values, name, colour in (
        (deletion, "deletion (remove top pixels)", "#d62728"),
        (insertion, "insertion (reveal top pixels)", "#2ca02c"),
    ):
        auc = float(np.trapezoid(values, fractions))
        figure.add_trace(
            go.Scatter(
                x=fractions,
                y=values,
                mode="lines+markers",
                name=f"{name}, AUC {auc:.3f}",
                line={"color": colour},
                hovertemplate="%{x:.0%} of pixels: p = %{y:.3f}<extra></extra>",
            )
        )
    figure.add_vline(x=float(fractions[step]), line_dash="dash", line_color="#5b6577")
    figure.update_layout(
        title=title,
        xaxis={"title": "share of pixels removed / revealed", "tickformat": ".0%"},
        yaxis={"title": "probability of the class", "range": [0, 1.02]},
        margin=_MARGIN,
        height=360,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def rate_bar_figure(rates: pd.Series, title: str, axis_title: str) -> go.Figure:
    """Horizontal bars of a share per item (e.g. breeds by error rate), highest on top.

    Args:
        rates: values in 0..1 indexed by item name.
        title: figure title.
        axis_title: what the share is.
    """
    ordered = rates.sort_values(ascending=False)
    figure = go.Figure(
        go.Bar(
            x=ordered.to_numpy(),
            y=[str(i) for i in ordered.index],
            orientation="h",
            text=[f"{v:.0%}" for v in ordered],
            textposition="auto",
            marker={"color": "#d62728"},
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        xaxis={
            "title": axis_title,
            "tickformat": ".0%",
            "range": [0, max(0.05, float(ordered.max()) * 1.1)],
        },
        yaxis={"autorange": "reversed"},
        margin=_MARGIN,
        height=120 + 28 * len(ordered),
    )
    return figure


def reliability_figure(bins: pd.DataFrame, ece: float) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with counts.

    Args:
        bins: :func:`cam_core.review.calibration.reliability_bins` output.
        ece: the expected calibration error, shown in the title.
    """
    centres = ((bins["low"] + bins["high"]) / 2).to_numpy()
    width = float((bins["high"] - bins["low"]).iloc[0]) if len(bins) else 0.1
    filled = bins["count"].to_numpy() > 0
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06
    )
    figure.add_trace(
        go.Bar(
            x=centres[filled],
            y=bins["accuracy"].to_numpy()[filled],
            width=width * 0.92,
            name="accuracy",
            marker={"color": "#1f77b4"},
            customdata=np.stack(
                [bins["count"].to_numpy()[filled], bins["confidence"].to_numpy()[filled]], axis=1
            ),
            hovertemplate="confidence ≈ %{x:.2f}<br>accuracy %{y:.1%}<br>"
            "mean confidence %{customdata[1]:.3f}<br>%{customdata[0]} images<extra></extra>",
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line={"dash": "dash", "color": "#7f7f7f"},
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Bar(
            x=centres,
            y=bins["count"].to_numpy(),
            width=width * 0.92,
            name="images",
            marker={"color": "#ff7f0e"},
            text=[str(int(c)) if c else "" for c in bins["count"]],
            textposition="outside",
            hovertemplate="%{y} images<extra></extra>",
        ),
        row=2,
        col=1,
    )
    figure.update_yaxes(title_text="accuracy", range=[0, 1.05], tickformat=".0%", row=1, col=1)
    figure.update_yaxes(title_text="images", row=2, col=1)
    figure.update_xaxes(title_text="confidence (top-class probability)", range=[0, 1], row=2, col=1)
    figure.update_layout(
        title=f"Reliability diagram · expected calibration error {ece:.3f}",
        margin=_MARGIN,
        height=520,
        legend={"orientation": "h", "y": 1.08},
    )
    return figure


_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def embedding_figure(
    coords: np.ndarray,
    values: pd.Series,
    label: str,
    hover: Sequence[str],
    marks: Sequence[tuple[float, float, str]] = (),
) -> go.Figure:
    """The 2-D map of an analysis: one WebGL point per image, coloured by ``values``.

    Args:
        coords: ``(N, 2)`` positions.
        values: ``(N,)`` what colours the points: numbers get a colour scale, anything else
            (classes, verdicts, yes/no) a colour and a legend entry per value.
        label: what ``values`` are (legend or colour-bar title).
        hover: ``(N,)`` text shown on hover (e.g. file, true and predicted class).
        marks: extra points ``(x, y, name)`` drawn as stars on top (uploaded photos).

    Returns:
        A figure whose points carry their row index as ``customdata`` (for selections).
    """
    rows = np.arange(len(coords))
    figure = go.Figure()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:
        shown = values.to_numpy(dtype=float)
        figure.add_trace(
            go.Scattergl(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                customdata=rows,
                hovertext=list(hover),
                hoverinfo="text",
                marker={
                    "color": np.where(np.isfinite(shown), shown, np.nan),
                    "colorscale": "Viridis",
                    "size": 6,
                    "colorbar": {"title": label},
                },
                name=label,
                showlegend=False,
            )
        )
    else:
        names = values.astype(str).fillna("–").to_numpy()
        for i, name in enumerate(pd.unique(names)):
            chosen = names == name
            figure.add_trace(
                go.Scattergl(
                    x=coords[chosen, 0],
                    y=coords[chosen, 1],
                    mode="markers",
                    customdata=rows[chosen],
                    hovertext=[h for h, c in zip(hover, chosen, strict=True) if c],
                    hoverinfo="text",
                    marker={"color": _PALETTE[i % len(_PALETTE)], "size": 6},
                    name=str(name),
                )
            )
    for x, y, name in marks:
        figure.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers+text",
                text=[name],
                textposition="top center",
                marker={"symbol": "star", "size": 18, "color": "#000", "line": {"width": 1}},
                name=name,
                hoverinfo="text",
                hovertext=[f"{name} (your photo)"],
            )
        )
    figure.update_layout(
        margin=_MARGIN,
        height=560,
        legend={"title": {"text": label}},
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
        dragmode="lasso",
        title="Validation images by what the model sees (t-SNE of its features)",
    )
    return figure


def region_figure(
    mean_map: np.ndarray, box: tuple[float, float, float, float], title: str, size: int = 240
) -> go.Figure:
    """A class-mean map with a candidate region outlined.

    Args:
        mean_map: ``(h, w)`` share of the class's map mass per cell (sums to 1).
        box: ``(x0, y0, x1, y1)`` as fractions of the image side.
        title: figure title.
        size: the drawn image side in pixels (the axes run over the image, 0..size).
    """
    values = np.asarray(mean_map, dtype=np.float32)
    h, w = values.shape
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=_cell_edges(w, size),
            y=_cell_edges(h, size),
            colorscale="Viridis",
            colorbar={"title": "share of mass", "tickformat": ".1%"},
            hovertemplate="share of the map's mass %{z:.2%}<extra></extra>",
        )
    )
    x0, y0, x1, y1 = (v * size for v in box)
    figure.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line={"color": "#ff2d2d", "width": 3})
    figure.update_layout(
        title=title,
        xaxis={"visible": False, "range": [0, size], "constrain": "domain"},
        yaxis={"visible": False, "range": [size, 0], "scaleanchor": "x"},
        margin=_MARGIN,
        height=300,
    )
    return figure
