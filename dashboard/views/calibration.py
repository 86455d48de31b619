"""Calibration: can the model's confidence be taken at its word?"""

from __future__ import annotations

import streamlit as st

from cam_core.calibration import confidently_wrong, expected_calibration_error, reliability_bins
from cam_core.figures import figure_html, reliability_figure
from dashboard import links, sidebar, state

ctx = sidebar.require()
table = ctx.art.table

st.title("Calibration")
n_bins = st.select_slider("Bins", [5, 10, 15, 20], value=10, key="cal_bins")
bins = reliability_bins(table, int(n_bins))
ece = expected_calibration_error(table, int(n_bins))
cols = st.columns(3)
cols[0].metric(
    "Expected calibration error",
    f"{ece:.3f}",
    help="Mean gap between confidence and accuracy over the bins, weighted by their images "
    "(0 = the confidence is the accuracy).",
)
cols[1].metric("Mean confidence", f"{table['confidence'].mean():.3f}")
cols[2].metric("Accuracy", f"{table['correct'].mean():.3f}")
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
threshold = st.slider("Confidence at least", 0.5, 1.0, 0.9, 0.01, key="cal_threshold")
wrong = confidently_wrong(table, float(threshold))
links.share("calibration", ctx, {"threshold": f"{float(threshold):g}"})
st.markdown(f"**{len(wrong)}** wrong predictions with confidence ≥ {threshold:.2f}.")
if not wrong.empty:
    shown = wrong[["path", "label", "pred", "confidence", "loss"]].assign(
        path=wrong["path"].map(lambda p: str(p).rsplit("/", 1)[-1])
    )
    st.dataframe(shown, hide_index=True)
    if st.button("Open these in the gallery", key="cal_open", type="primary"):
        st.session_state[state.GALLERY_CONFIDENCE] = (float(threshold), 1.0)
        st.session_state[state.GALLERY_CORRECT] = "incorrect"
        st.session_state[state.GALLERY_TRUE] = []
        st.session_state[state.GALLERY_PRED] = []
        st.session_state[state.GALLERY_SORT] = "confidence (highest first)"
        st.session_state[state.GALLERY_PAGE] = 1
        st.switch_page("views/gallery.py")
