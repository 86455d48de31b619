"""Gallery: validation images with the predicted-class overlay, filtered, sorted and paged."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cam_core.evaluation.slices import SLICE_PREFIX
from cam_core.present.display import finding_marks
from cam_core.review.reviews import VERDICTS
from cam_core.review.selection import (
    SORT_ORDERS,
    UNREVIEWED,
    filter_predictions,
    page_count,
    page_of,
)
from dashboard import links, pages, resources, review_panel, sidebar, state, widgets

ctx = sidebar.require()
reviews = review_panel.reviews(ctx)
picked_slice = tuple(st.session_state.get(state.GALLERY_SLICE, ()) or ())
table = review_panel.annotated(
    ctx, reviews, extra=(SLICE_PREFIX + picked_slice[0],) if len(picked_slice) == 2 else ()
)
classes = list(ctx.art.manifest.classes)

st.title("Gallery")
with st.container(border=True):
    row1 = st.columns([2, 1, 1.3])
    if state.GALLERY_CONFIDENCE not in st.session_state:
        st.session_state[state.GALLERY_CONFIDENCE] = (0.0, 1.0)
    row1[0].slider(
        "Confidence of the prediction", 0.0, 1.0, step=0.01, key=state.GALLERY_CONFIDENCE
    )
    row1[1].radio(
        "Show", ["all", "correct", "incorrect"], horizontal=True, key=state.GALLERY_CORRECT
    )
    if st.session_state.get(state.GALLERY_SORT) not in SORT_ORDERS:
        st.session_state[state.GALLERY_SORT] = next(iter(SORT_ORDERS))
    row1[2].selectbox("Sort by", list(SORT_ORDERS), key=state.GALLERY_SORT)
    row2 = st.columns([1.5, 1.5, 1, 1])
    row2[0].multiselect("True class", classes, key=state.GALLERY_TRUE, placeholder="all classes")
    row2[1].multiselect(
        "Predicted class", classes, key=state.GALLERY_PRED, placeholder="all classes"
    )
    per_page = row2[2].selectbox("Per page", [25, 50, 100], key="gal_per_page")
    overlay_on = row2[3].toggle(
        "Overlay",
        value=True,
        key="gal_overlay",
        help="Show the predicted class's map over each image.",
    )
    row3 = st.columns([2, 1.5, 1.5, 2])
    row3[0].multiselect(
        "Verdict",
        [UNREVIEWED, *VERDICTS],
        key=state.GALLERY_VERDICTS,
        placeholder="any verdict",
    )
    row3[1].text_input("Tag", key=state.GALLERY_TAG, placeholder="any tag")
    row3[2].toggle(
        "Suspected label errors only",
        key=state.GALLERY_SUSPECTED,
        help="Images whose given label is likely wrong, by confident learning (cleanlab) on "
        "the predicted probabilities; sort by 'suspected label error first' to rank them.",
    )
    if "breed" in table:
        row3[3].multiselect(
            "Breed",
            sorted(table["breed"].dropna().unique()),
            key=state.GALLERY_BREEDS,
            placeholder="all breeds",
        )
    if "unfamiliar" in table:
        row4 = st.columns([1.5, 1.5, 3])
        row4[0].toggle(
            "Unfamiliar only",
            key=state.GALLERY_UNFAMILIAR,
            help="Images less familiar to the model than 95% of the validation images: unlike "
            "what it was trained on, so its answer may mean nothing.",
        )
        row4[1].toggle(
            "Near-duplicates only",
            key=state.GALLERY_DUPLICATES,
            help="Images with a near-copy among the validation images, or among the training "
            "images (leakage).",
        )
    if st.session_state.get(state.GALLERY_ROWS):
        chosen = st.columns([4, 1], vertical_alignment="center")
        chosen[0].info(
            "Showing only a selection of images (from the Embedding map or the Shortcuts page)."
        )
        if chosen[1].button("Show all", key="gal_rows_clear"):
            st.session_state[state.GALLERY_ROWS] = ""
            st.rerun()
    if len(picked_slice) == 2:
        chosen = st.columns([4, 1], vertical_alignment="center")
        chosen[0].info(f"Showing only the slice {picked_slice[0]} = {picked_slice[1]}.")
        if chosen[1].button("Show all", key="gal_slice_clear"):
            st.session_state[state.GALLERY_SLICE] = ()
            st.rerun()

flt = state.gallery_filter()
matched = filter_predictions(table, flt)
links.copy_link("gallery", ctx, flt.to_query())
st.markdown(f"**{len(matched)}** of {len(table)} images match the filter.")
review_columns = ["verdict", "corrected_label", "reviewer", "label_issue_rank", "label_quality"]
widgets.csv_download(
    lambda: ctx.art.table.loc[matched.index].join(matched[review_columns]),
    "Filtered table (CSV)",
    "gallery.csv",
    "gal_csv",
)
if matched.empty:
    st.info("No image matches; widen the confidence range or clear the class filters.")
    st.stop()

n_pages = page_count(len(matched), per_page)
if int(st.session_state.get(state.GALLERY_PAGE, 1)) > n_pages:
    st.session_state[state.GALLERY_PAGE] = 1
page = st.number_input(f"Page (of {n_pages})", 1, n_pages, key=state.GALLERY_PAGE)
rows, _ = page_of(matched, int(page), per_page)

columns = st.columns(5)
for slot, (index, row) in enumerate(rows.iterrows()):
    position = table.index.get_loc(index)
    if overlay_on:
        png = resources.overlay_png(
            ctx.key,
            ctx.version,
            ctx.method,
            position,
            classes.index(row["pred"]),
            ctx.colorscale,
            ctx.opacity,
        )
    else:
        png = resources.view_png(str(row["path"]), ctx.art.manifest.image_size)
    mark = "" if row["correct"] else f" ✗ true {row['label']}"
    if not pd.isna(row["label_issue_rank"]):
        mark += f" · suspected label error #{int(row['label_issue_rank'])}"
    mark += finding_marks(row)
    with columns[slot % 5]:
        st.image(png, caption=f"{row['pred']} ({row['confidence']:.2f}){mark}", width="stretch")
        review_panel.quick_verdict(
            ctx, str(row["path"]), reviews.get(str(row["path"])), f"gal_verdict_{position}"
        )
        if st.button("Heatmaps", key=f"gal_open_{position}", width="stretch"):
            pages.open_image(position)
