"""Gallery: validation images with the predicted-class overlay, filtered, sorted and paged."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cam_core.reviews import VERDICTS
from cam_core.selection import UNREVIEWED, GalleryFilter, filter_predictions, page_count, page_of
from dashboard import links, resources, review_panel, sidebar, state, widgets

SORTS = {
    "loss (highest first)": ("loss", False),
    "confidence (highest first)": ("confidence", False),
    "confidence (lowest first)": ("confidence", True),
    "file name": ("path", True),
    "suspected label error first": ("label_quality", True),
}

ctx = sidebar.require()
reviews = review_panel.reviews(ctx)
table = review_panel.annotated(ctx, reviews)
classes = list(ctx.art.manifest.classes)

st.title("Gallery")
with st.container(border=True):
    row1 = st.columns([2, 1, 1.3])
    if state.GALLERY_CONFIDENCE not in st.session_state:
        st.session_state[state.GALLERY_CONFIDENCE] = (0.0, 1.0)
    confidence: tuple[float, float] = row1[0].slider(  # type: ignore[assignment]
        "Confidence of the prediction", 0.0, 1.0, step=0.01, key=state.GALLERY_CONFIDENCE
    )
    correctness = row1[1].radio(
        "Show", ["all", "correct", "incorrect"], horizontal=True, key=state.GALLERY_CORRECT
    )
    if st.session_state.get(state.GALLERY_SORT) not in SORTS:
        st.session_state[state.GALLERY_SORT] = next(iter(SORTS))
    sort = row1[2].selectbox("Sort by", list(SORTS), key=state.GALLERY_SORT)
    row2 = st.columns([1.5, 1.5, 1, 1])
    true_classes = row2[0].multiselect(
        "True class", classes, key=state.GALLERY_TRUE, placeholder="all classes"
    )
    pred_classes = row2[1].multiselect(
        "Predicted class", classes, key=state.GALLERY_PRED, placeholder="all classes"
    )
    per_page = row2[2].selectbox("Per page", [25, 50, 100], key="gal_per_page")
    overlay_on = row2[3].toggle(
        "Overlay",
        value=True,
        key="gal_overlay",
        help="Show the predicted class's map over each image.",
    )
    row3 = st.columns([2, 1.5, 1.5])
    verdicts = row3[0].multiselect(
        "Verdict",
        [UNREVIEWED, *VERDICTS],
        key=state.GALLERY_VERDICTS,
        placeholder="any verdict",
    )
    tag = row3[1].text_input("Tag", key=state.GALLERY_TAG, placeholder="any tag")
    suspected = row3[2].toggle(
        "Suspected label errors only",
        key=state.GALLERY_SUSPECTED,
        help="Images whose given label is likely wrong, by confident learning (cleanlab) on "
        "the predicted probabilities; sort by 'suspected label error first' to rank them.",
    )

matched = filter_predictions(
    table,
    GalleryFilter(
        confidence=(float(confidence[0]), float(confidence[1])),
        correctness=str(correctness),
        true_classes=tuple(true_classes),
        pred_classes=tuple(pred_classes),
        sort_by=SORTS[str(sort)][0],
        ascending=SORTS[str(sort)][1],
        verdicts=tuple(verdicts),
        tag=str(tag).strip(),
        suspected_only=bool(suspected),
    ),
)
links.copy_link(
    "gallery",
    ctx,
    {
        "conf": f"{float(confidence[0]):g}-{float(confidence[1]):g}",
        "show": str(correctness),
        "true": ",".join(true_classes),
        "pred": ",".join(pred_classes),
        "sort": str(sort),
        "verdict": ",".join(verdicts),
        "tag": str(tag).strip(),
        "suspected": "1" if suspected else "",
    },
)
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

pages = page_count(len(matched), per_page)
if int(st.session_state.get(state.GALLERY_PAGE, 1)) > pages:
    st.session_state[state.GALLERY_PAGE] = 1
page = st.number_input(f"Page (of {pages})", 1, pages, key=state.GALLERY_PAGE)
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
    with columns[slot % 5]:
        st.image(png, caption=f"{row['pred']} ({row['confidence']:.2f}){mark}", width="stretch")
        review_panel.quick_verdict(
            ctx, str(row["path"]), reviews.get(str(row["path"])), f"gal_verdict_{position}"
        )
        if st.button("Heatmaps", key=f"gal_open_{position}", width="stretch"):
            st.session_state[state.SELECTED_ROW] = position
            st.switch_page("views/heatmaps.py")
