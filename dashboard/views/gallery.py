"""Gallery: validation images with the predicted-class overlay, filtered, sorted and paged."""

from __future__ import annotations

import streamlit as st

from cam_core.selection import GalleryFilter, filter_predictions, page_count, page_of
from dashboard import resources, sidebar, state, widgets

SORTS = {
    "loss (highest first)": ("loss", False),
    "confidence (highest first)": ("confidence", False),
    "confidence (lowest first)": ("confidence", True),
    "file name": ("path", True),
}

ctx = sidebar.require()
table = ctx.art.table
classes = list(ctx.art.manifest.classes)

st.title("Gallery")
with st.container(border=True):
    row1 = st.columns([2, 1, 1.3])
    confidence = row1[0].slider(
        "Confidence of the prediction", 0.0, 1.0, (0.0, 1.0), 0.01, key="gal_conf"
    )
    correctness = row1[1].radio(
        "Show", ["all", "correct", "incorrect"], horizontal=True, key=state.GALLERY_CORRECT
    )
    sort = row1[2].selectbox("Sort by", list(SORTS), key="gal_sort")
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

matched = filter_predictions(
    table,
    GalleryFilter(
        confidence=(float(confidence[0]), float(confidence[1])),
        correctness=str(correctness),
        true_classes=tuple(true_classes),
        pred_classes=tuple(pred_classes),
        sort_by=SORTS[str(sort)][0],
        ascending=SORTS[str(sort)][1],
    ),
)
st.markdown(f"**{len(matched)}** of {len(table)} images match the filter.")
widgets.csv_download(matched, "Filtered table (CSV)", "gallery.csv", "gal_csv")
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
    with columns[slot % 5]:
        st.image(png, caption=f"{row['pred']} ({row['confidence']:.2f}){mark}", width="stretch")
        if st.button("Heatmaps", key=f"gal_open_{position}", width="stretch"):
            st.session_state[state.SELECTED_ROW] = position
            st.switch_page("views/heatmaps.py")
