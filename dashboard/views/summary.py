"""Summary: one screen for a meeting; every number links to the page behind it."""

from __future__ import annotations

import streamlit as st

from cam_core.errors import CamLensError
from cam_core.modelling.model_files import ModelCard
from cam_core.present.summaries import stakeholder_summary
from cam_core.review.reviews import verdict_counts
from cam_core.review.selection import GalleryFilter
from dashboard import links, pages, resources, review_panel, sidebar

ctx = sidebar.require()
manifest = ctx.art.manifest
card: ModelCard | None
try:
    card = resources.model_card(manifest.model_dir, ctx.version)
except CamLensError:
    card = None
counts = (
    verdict_counts(ctx.art.table, review_panel.reviews(ctx))
    if review_panel.store(ctx) is not None
    else None
)
content = stakeholder_summary(ctx.art, card, counts)

st.title("Summary")
st.caption(content.model_line)
links.share("summary", ctx)

columns = st.columns(len(content.numbers))
for column, number in zip(columns, content.numbers, strict=True):
    with column:
        st.metric(number.label, number.value, help=number.help)
        if number.interval:
            st.caption(f"95% interval {number.interval}")
        st.page_link(
            pages.page(number.page).script, label="Details", icon=":material/arrow_forward:"
        )

st.subheader("Largest confusions")
if not content.confusions:
    st.success("No validation image is misclassified.")
else:
    shown = st.columns(3)
    classes = list(manifest.classes)
    for position, (column, confusion) in enumerate(zip(shown, content.confusions, strict=False)):
        with column:
            st.markdown(
                f"**{confusion.true} → {confusion.pred}**: {confusion.count} images "
                f"({confusion.share:.1%} of {confusion.true})"
            )
            st.image(
                resources.overlay_png(
                    ctx.key,
                    ctx.version,
                    ctx.method,
                    confusion.example_row,
                    classes.index(confusion.pred),
                    ctx.colorscale,
                    ctx.opacity,
                ),
                caption=f"{ctx.record.title}, map of {confusion.pred} on the worst of them",
                width="stretch",
            )
            if st.button("Open these images", key=f"sum_open_{position}", width="stretch"):
                pages.open_in_gallery(
                    GalleryFilter(
                        correctness="incorrect",
                        true_classes=(confusion.true,),
                        pred_classes=(confusion.pred,),
                    )
                )

st.subheader("Which explanation to believe")
if content.believe is None:
    st.warning(f"None: {content.believe_why}.")
else:
    st.markdown(f"**{content.believe_why}.**")
st.page_link(pages.page("quality").script, label="The evidence", icon=":material/verified:")

st.subheader("What the analysts decided")
if content.verdicts is None:
    st.info("The verdicts cannot be read.")
else:
    verdict_columns = st.columns(len(content.verdicts))
    for box, (verdict, count) in zip(verdict_columns, content.verdicts.items(), strict=True):
        box.metric(verdict.capitalize(), f"{count:,}")
    st.page_link(pages.page("review").script, label="Review errors", icon=":material/rate_review:")
