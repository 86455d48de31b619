"""Compare methods: one image, one row per explanation method, with that image's scores."""

from __future__ import annotations

import io
import math

import streamlit as st
from PIL import Image

from cam_core.evaluation.suite import scores_of
from cam_core.present.display import display_value, map_meaning
from dashboard import resources, sidebar, widgets

ctx = sidebar.require()
table, manifest = ctx.art.table, ctx.art.manifest
classes = list(manifest.classes)

st.title("Compare methods")
pick = st.columns([3, 1])
with pick[0]:
    row_index = widgets.image_picker(table, "cmp_row")
row = table.iloc[row_index]
chosen = pick[1].selectbox(
    "Class", classes, index=classes.index(str(row["label"])), key=f"cmp_class_{row_index}"
)
k = classes.index(str(chosen))
shown = widgets.classes_to_show(row, classes, "cmp_classes")
st.markdown(
    f"**true:** {row['label']} · **predicted:** {row['pred']} "
    f"({display_value('probability', row['confidence'])}) · "
    f"maps of **{chosen}**"
)


view_png = resources.view_png(str(row["path"]), manifest.image_size)
for method, record in manifest.methods.items():
    scores = scores_of(row.to_dict(), method)
    with st.container(border=True, key=f"cmp_method_{method}"):
        cols = st.columns([1, 1, 2])
        cols[0].image(view_png, caption="image", width="stretch")
        cols[1].image(
            resources.overlay_png(
                ctx.key, ctx.version, method, row_index, k, ctx.colorscale, ctx.opacity
            ),
            caption=f"{record.title}: {chosen}",
            width="stretch",
        )
        with cols[2]:
            st.markdown(f"**{record.title}** · layer `{record.layer}`")
            st.caption(map_meaning(record))
            hit = scores["pointing_game"]
            pointing = "–" if math.isnan(hit) else ("hit" if hit else "miss")
            st.markdown(
                f"pointing game: {pointing} · "
                f"energy in mask: {display_value('percent', scores['energy_in_mask'])} · "
                f"deletion AUC: {display_value('score', scores['deletion_auc'])} · "
                f"insertion AUC: {display_value('score', scores['insertion_auc'])}"
            )
            st.caption(
                "Scores are for the true class; – means not measured for this image "
                "(outside the deletion/insertion sample, or no mask)."
            )
        with st.expander(f"Every class with {record.title}"):
            widgets.class_map_grid(
                ctx.art.image_maps(method, row_index),
                Image.open(io.BytesIO(view_png)),
                classes,
                ctx.colorscale,
                ctx.opacity,
                shared_range=record.additive,
                key=f"cmp_grid_{method}",
                record=record,
                shown=shown,
            )
