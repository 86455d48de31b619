"""Calibration: can the model's confidence be taken at its word?"""

from __future__ import annotations

import streamlit as st

from cam_core.present.display import display_value
from cam_core.present.figures import figure_html, reliability_figure
from cam_core.review.calibration import (
    confidently_wrong,
    expected_calibration_error,
    reliability_bins,
)
from cam_core.review.selection import GalleryFilter
from dashboard import links, pages, sidebar, state

ctx = sidebar.require()
table = ctx.art.table

st.title("Calibration")
n_bins = st.select_slider("Bins", [5, 10, 15, 20], value=10, key="cal_bins")
bins = reliability_bins(table, int(n_bins))
ece = expected_calibration_error(table, int(n_bins))
cols = st.columns(3)
cols[0].metric(
    "Expected calibration error",
    display_value("score", ece),
    help="Mean gap between confidence and accuracy over the bins, weighted by their images "
    "(0 = the confidence is the accuracy).",
)
cols[1].metric("Mean confidence", display_value("percent", table["confidence"].mean()))
cols[2].metric("Accuracy", display_value("percent", table["correct"].mean()))
figure = reliability_figure(bins, ece)
st.plotly_chart(figure, key="cal_reliability")
st.caption(
    "Bars under the diagonal: the model is more confident than it is right (overconfident); "
    "above it: underconfident. The lower panel counts the images in each bin."
)
st.download_button(
    "Reliability diagram (HTML)",
    figure_html(figure),
    file_name="reliability.html",
    mime="text/html",
    key="cal_html",
)

st.subheader("Confidently wrong")
if state.CALIBRATION_THRESHOLD not in st.session_state:
    st.session_state[state.CALIBRATION_THRESHOLD] = 0.9
threshold = st.slider("Confidence at least", 0.0, 1.0, step=0.01, key=state.CALIBRATION_THRESHOLD)
wrong = confidently_wrong(table, float(threshold))
links.share("calibration", ctx, {"threshold": f"{float(threshold):g}"})
st.markdown(f"**{len(wrong)}** wrong predictions with confidence ≥ {threshold:.2f}.")
if not wrong.empty:
    shown = wrong[["path", "label", "pred", "confidence", "loss"]].assign(
        path=wrong["path"].map(lambda p: str(p).rsplit("/", 1)[-1])
    )
    st.dataframe(shown, hide_index=True)
    if st.button("Open these in the gallery", key="cal_open", type="primary"):
        pages.open_in_gallery(
            GalleryFilter(
                confidence=(float(threshold), 1.0),
                correctness="incorrect",
                sort_by="confidence",
                ascending=False,
            )
        )
