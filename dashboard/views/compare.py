"""Compare methods: one image, one row per explanation method with that image's scores; or,
in the layers view, one row per candidate layer with the scores ``--layer auto`` measured."""

from __future__ import annotations

import io
import math

import streamlit as st
from PIL import Image

from cam_core.errors import CamLensError
from cam_core.evaluation.suite import scores_of
from cam_core.present.display import display_value, map_meaning
from cam_core.present.tables import layer_choice_display
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
view = st.segmented_control(
    "View",
    ["Methods", "Layers"],
    default="Methods",
    key="cmp_view",
    help="Methods: every method of the analysis at its layer. Layers: one gradient method at "
    "each candidate layer, with the scores that chose the layer.",
)


def layers_view() -> None:
    try:
        method, layers = resources.layer_candidates(ctx.key, ctx.version)
    except CamLensError as exc:
        st.info(f"The layers cannot be compared: {exc}")
        return
    choice = manifest.layer_choice
    title = manifest.methods[method].title if method in manifest.methods else method
    if choice is None:
        st.info(
            "This analysis did not compare layers, so the rows below have maps but no scores. "
            "`python -m cam_core layers --model MODEL` scores them; `analyze --layer auto` picks "
            "one and records why."
        )
    else:
        st.markdown(
            f"**Chosen layer:** `{choice.chosen}`: {choice.reason}. Scored with {title} on "
            f"{choice.sample_size} images (sanity check on {choice.sanity_size})."
        )
        if not choice.candidates:
            st.caption("Only one candidate layer: nothing to compare.")
    scored = layer_choice_display(choice).text() if choice and choice.candidates else None
    for position, layer in enumerate(layers):
        with st.container(border=True, key=f"cmp_layer_{position}"):
            cols = st.columns([1, 1, 2])
            cols[0].image(view_png, caption="image", width="stretch")
            try:
                png, grid = resources.layer_overlay_png(
                    ctx.key, ctx.version, method, row_index, k, layer, ctx.colorscale, ctx.opacity
                )
            except CamLensError as exc:
                cols[1].info(str(exc))
                continue
            cols[1].image(png, caption=f"{title} at {layer}: {chosen}", width="stretch")
            with cols[2]:
                chosen_mark = (
                    " · **chosen**" if choice is not None and layer == choice.chosen else ""
                )
                st.markdown(f"`{layer}` · {grid[0]}×{grid[1]} cells{chosen_mark}")
                if scored is not None and layer in scored.index:
                    figures = scored.loc[layer]
                    st.markdown(
                        f"deletion AUC {figures['deletion_auc']} · insertion AUC "
                        f"{figures['insertion_auc']} · baselines {figures['baselines']} · "
                        f"sanity {figures['randomization_spearman']} "
                        f"({figures['sanity_passed']}) · beats both baselines: "
                        f"{figures['faithful']}"
                    )
                    st.caption("Means over the sample, for the true class.")


if view == "Layers":
    layers_view()
    st.stop()
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
