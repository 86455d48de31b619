"""Breeds: how the model does on each breed, and each breed's worst errors.

Works for both tasks: under the species task it answers "which cat breeds are called dogs".
"""

from __future__ import annotations

import streamlit as st

from cam_core.present.figures import rate_bar_figure
from cam_core.review.selection import GalleryFilter, errors
from dashboard import pages, resources, sidebar

ctx = sidebar.require()
table = ctx.art.table
classes = list(ctx.art.manifest.classes)
task = ctx.art.manifest.data.get("task", "species")

st.title("Breeds")
try:
    breeds = resources.breed_summary(ctx.key, ctx.version, ctx.method)
except ValueError as exc:
    st.info(f"No breed view: {exc}.")
    st.stop()

st.markdown(
    f"**{len(breeds)}** breeds under the **{task}** task. Each breed's accuracy is against "
    "its label under that task (for the species task: cat or dog)."
)
left, right = st.columns([3, 2])
with left:
    st.dataframe(
        breeds,
        column_config={
            "n": st.column_config.NumberColumn("images"),
            "label": st.column_config.TextColumn("class"),
            "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
            "errors": None,
            "error_rate": None,
            "top_wrong": st.column_config.TextColumn("most frequent wrong prediction"),
            "mean_confidence": st.column_config.NumberColumn("mean confidence", format="%.3f"),
            "pointing_game": st.column_config.NumberColumn(
                f"pointing game ({ctx.record.title})", format="percent"
            ),
        },
        key="breed_table",
    )
with right:
    st.plotly_chart(
        rate_bar_figure(breeds["error_rate"], "Breeds by error rate", "error rate"),
        key="breed_bars",
    )

st.subheader("Worst errors per breed")
per_breed = st.select_slider("Errors shown per breed", [3, 5, 10], value=5, key="breed_strip_n")
listed = table[["path", "label", "pred", "correct", "confidence", "loss", "breed"]]
worst = errors(listed, "loss").groupby("breed", sort=False).head(int(per_breed))
by_breed = dict(tuple(worst.groupby("breed", sort=False)))
for breed, info in breeds.iterrows():
    wrong = by_breed.get(breed, worst.iloc[:0])
    if wrong.empty:
        continue
    count = int(info["errors"])
    heading = st.columns([4, 1], vertical_alignment="center")
    heading[0].markdown(f"**{breed}** ({info['label']}): {count} error{'s' if count != 1 else ''}")
    if heading[1].button("Its errors in the Gallery", key=f"breed_gallery_{breed}"):
        pages.open_in_gallery(GalleryFilter(correctness="incorrect", breeds=(str(breed),)))
    cols = st.columns(int(per_breed))
    for col, (index, row) in zip(cols, wrong.iterrows(), strict=False):
        position = table.index.get_loc(index)
        col.image(
            resources.overlay_png(
                ctx.key,
                ctx.version,
                ctx.method,
                position,
                classes.index(str(row["pred"])),
                ctx.colorscale,
                ctx.opacity,
            ),
            caption=f"→ {row['pred']} ({row['confidence']:.2f})",
            width="stretch",
        )
        if col.button("Heatmaps", key=f"breed_open_{position}", width="stretch"):
            pages.open_image(position)
