"""Overview: model card, headline metrics, per-class scores, clickable confusion matrix."""

from __future__ import annotations

import functools

import streamlit as st

from cam_core.errors import CamLensError
from cam_core.modelling.model_files import ModelCard
from cam_core.present.figures import figure_html
from cam_core.present.summaries import finding_headlines, headline_metrics, model_card_rows
from cam_core.present.tables import per_class_display
from cam_core.review.reviews import export_bytes, reviews_table, verdict_counts
from cam_core.review.selection import GalleryFilter
from dashboard import links, pages, resources, review_panel, sidebar, widgets

ctx = sidebar.require()
table, manifest = ctx.art.table, ctx.art.manifest
classes = list(manifest.classes)

st.title("Overview")
card: ModelCard | None
try:
    card = resources.model_card(manifest.model_dir, ctx.version)
except CamLensError as exc:
    card = None
    st.warning(f"Model card unavailable: {exc}")

links.share("overview", ctx)
cols = st.columns(5)
for col, headline in zip(cols, headline_metrics(table, ctx.method), strict=False):
    col.metric(headline.label, headline.value, help=headline.help)

findings = finding_headlines(table, manifest)
if findings:
    with st.container(border=True):
        st.markdown("**Familiar ground** · odd ones out and near-copies (Embedding map)")
        for col, headline in zip(st.columns(4), findings, strict=False):
            col.metric(headline.label, headline.value, help=headline.help)
        if st.columns(4)[3].button("Embedding map", key="overview_embedding"):
            pages.go("embedding")

reviews = review_panel.reviews(ctx)
reviewed = reviews_table(table, reviews)
with st.container(border=True):
    st.markdown("**Review** · verdicts of the analysts on these images")
    counts = verdict_counts(table, reviews)
    for col, (verdict, count) in zip(st.columns(len(counts)), counts.items(), strict=True):
        col.metric(verdict, count)
    exports = st.columns([1, 1, 1, 3])
    label_errors = reviewed[reviewed["verdict"] == "label error"]
    for column, (label, frame, fmt, file_name) in zip(
        exports,
        (
            ("Verdicts (CSV)", reviewed, "csv", "verdicts.csv"),
            ("Verdicts (JSON)", reviewed, "json", "verdicts.json"),
            ("Label errors (CSV)", label_errors, "csv", "label_errors.csv"),
        ),
        strict=False,
    ):
        column.download_button(
            label,
            functools.partial(export_bytes, frame, fmt),
            file_name=file_name,
            mime="application/json" if fmt == "json" else "text/csv",
            key=f"overview_{file_name.replace('.', '_')}",
        )

left, right = st.columns([1, 1])
with left:
    st.subheader("Model card")
    if card is not None:
        st.table(model_card_rows(card))
    st.subheader("Per class")
    widgets.display_table(per_class_display(table, classes), "overview_per_class")
with right:
    figure, histogram = resources.overview_figures(ctx.key, ctx.version)
    event = st.plotly_chart(
        figure, key="overview_confusion", on_select="rerun", selection_mode="points"
    )
    points = event.selection.points if event and event.selection else []
    cell = next((p.get("customdata") for p in points if p.get("customdata")), None)
    st.caption("Click a cell to open those images in the gallery.")
    pick = st.columns([2, 2, 1])
    true_pick = pick[0].selectbox("True class", classes, key="overview_true")
    pred_pick = pick[1].selectbox(
        "Predicted class", classes, key="overview_pred", index=min(1, len(classes) - 1)
    )
    if pick[2].button("Open", key="overview_open"):
        cell = [true_pick, pred_pick]
    if cell:
        pages.open_in_gallery(GalleryFilter(true_classes=(cell[0],), pred_classes=(cell[1],)))
    st.download_button(
        "Confusion matrix (HTML)",
        figure_html(figure),
        file_name="confusion_matrix.html",
        mime="text/html",
        key="overview_cm_html",
    )

st.plotly_chart(histogram, key="overview_hist")
dl = st.columns(3)
dl[0].download_button(
    "Confidence chart (HTML)",
    figure_html(histogram),
    file_name="confidence.html",
    mime="text/html",
    key="overview_hist_html",
)
dl[1].download_button(
    "HTML report",
    resources.report_html(ctx.key, ctx.version, 12, ctx.colorscale, ctx.method, reviewed, counts),
    file_name="cam_lens_report.html",
    mime="text/html",
    type="primary",
    key="overview_report",
    help="One self-contained file: model card, metrics, explanation quality, confusion matrix, "
    "top errors with the chosen method's maps.",
)
dl[2].download_button(
    "Predictions (CSV)",
    lambda: table.to_csv(index=False),  # built when clicked
    file_name="predictions.csv",
    mime="text/csv",
    key="overview_csv",
)
