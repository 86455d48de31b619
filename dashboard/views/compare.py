"""Compare methods: one image, one row per explanation method, with that image's scores."""

from __future__ import annotations

import io
import math

import streamlit as st
from PIL import Image

from cam_core.evaluation.suite import scores_of
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
    f"**true:** {row['label']} · **predicted:** {row['pred']} ({row['confidence']:.3f}) · "
    f"maps of **{chosen}**"
)


def _shown(value: float, percent: bool = False) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.0%}" if percent else f"{value:.3f}"


view_png = resources.view_png(str(row["path"]), manifest.image_size)
for method, info in manifest.methods.items():
    scores = scores_of(row.to_dict(), method)
    with st.container(border=True, key=f"cmp_method_{method}"):
        cols = st.columns([1, 1, 2])
        cols[0].image(view_png, caption="image", width="stretch")
        cols[1].image(
            resources.overlay_png(
                ctx.key, ctx.version, method, row_index, k, ctx.colorscale, ctx.opacity
            ),
            caption=f"{info.get('title', method)}: {chosen}",
            width="stretch",
        )
        with cols[2]:
            st.markdown(f"**{info.get('title', method)}** · layer `{info.get('layer', 'body')}`")
            st.caption(widgets.map_meaning(info))
            hit = scores["pointing_game"]
            pointing = "–" if math.isnan(hit) else ("hit" if hit else "miss")
            st.markdown(
                f"pointing game: {pointing} · "
                f"energy in mask: {_shown(scores['energy_in_mask'], percent=True)} · "
                f"deletion AUC: {_shown(scores['deletion_auc'])} · "
                f"insertion AUC: {_shown(scores['insertion_auc'])}"
            )
            st.caption(
                "Scores are for the true class; – means not measured for this image "
                "(outside the deletion/insertion sample, or no mask)."
            )
        with st.expander(f"Every class with {info.get('title', method)}"):
            widgets.class_map_grid(
                ctx.art.image_maps(method, row_index),
                Image.open(io.BytesIO(view_png)),
                classes,
                ctx.colorscale,
                ctx.opacity,
                shared_range=bool(info.get("additive")),
                key=f"cmp_grid_{method}",
                additive=bool(info.get("additive")),
                bias=widgets.bias_of(info),
                shown=shown,
            )
