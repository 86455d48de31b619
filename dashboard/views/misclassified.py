"""Misclassified: every validation error with the maps of the predicted and the true class."""

from __future__ import annotations

import streamlit as st

from cam_core.present.display import display_value
from cam_core.review.selection import errors, page_count, page_of
from dashboard import links, pages, resources, review_panel, sidebar, widgets

ctx = sidebar.require()
table = ctx.art.table
classes = list(ctx.art.manifest.classes)

st.title("Misclassified")
methods = ctx.art.manifest.methods
others = ["none", *(m for m in methods if m != ctx.method)]
controls = st.columns([2, 1.5, 1, 1])
sort_by = controls[0].radio(
    "Sort by",
    ["loss", "confidence"],
    horizontal=True,
    key="mis_sort",
    help="Both put the most confidently wrong images first.",
)
second = controls[1].selectbox(
    "Side by side with",
    others,
    key="mis_second",
    format_func=lambda m: "no second method" if m == "none" else methods[m].title,
    help="Show a second method's maps next to the sidebar's method.",
)
per_page = controls[2].selectbox("Per page", [10, 25, 50], key="mis_per_page")
wrong = errors(table, sort_by)
st.markdown(f"**{len(wrong)}** of {len(table)} validation images are misclassified.")
links.share("misclassified", ctx)
verdicts = review_panel.reviews(ctx)
if not wrong.empty and st.button(
    "Review them one by one", key="mis_review", icon=":material/rate_review:"
):
    pages.go("review")
if wrong.empty:
    st.success("The model gets every validation image right.")
    st.stop()
page_number = controls[3].number_input(
    "Page", 1, page_count(len(wrong), per_page), 1, key="mis_page"
)
rows, n_pages = page_of(wrong, int(page_number), per_page)
st.caption(f"Page {min(int(page_number), n_pages)} of {n_pages}")
widgets.csv_download(wrong, "Error table (CSV)", "errors.csv", "mis_csv")

for index, row in rows.iterrows():
    position = table.index.get_loc(index)
    shown = [ctx.method] if second == "none" else [ctx.method, str(second)]
    with st.container(border=True, key=f"mis_row_{position}"):
        cols = st.columns([1] + [1, 1] * len(shown) + [1.3])
        cols[0].image(
            resources.view_png(str(row["path"]), ctx.art.manifest.image_size),
            caption="image",
            width="stretch",
        )
        slots = iter(cols[1:-1])
        for method in shown:
            for name, role in ((row["pred"], "predicted"), (row["label"], "true")):
                png = resources.overlay_png(
                    ctx.key,
                    ctx.version,
                    method,
                    position,
                    classes.index(name),
                    ctx.colorscale,
                    ctx.opacity,
                )
                title = methods[method].title
                next(slots).image(png, caption=f"{title}: {name} ({role})", width="stretch")
        with cols[-1]:
            st.markdown(f"**true:** {row['label']} · **predicted:** {row['pred']}")
            st.markdown(
                f"confidence {display_value('probability', row['confidence'])} · "
                f"loss {display_value('score', row['loss'])}"
            )
            st.caption(
                " · ".join(
                    f"{c}: {display_value('probability', row[f'prob_{c}'])}" for c in classes
                )
            )
            st.caption(str(row["path"]).rsplit("/", 1)[-1])
            review_panel.quick_verdict(
                ctx, str(row["path"]), verdicts.get(str(row["path"])), f"mis_verdict_{position}"
            )
            if st.button("Open in class heatmaps", key=f"mis_open_{position}"):
                pages.open_image(position)
