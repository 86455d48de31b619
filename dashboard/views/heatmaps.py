"""Class heatmaps: an interactive map for every class of one image, and the difference map."""

from __future__ import annotations

import io

import streamlit as st
from PIL import Image

from cam_core.present.display import display_value, map_meaning
from cam_core.present.figures import difference_figure, figure_html
from dashboard import links, resources, review_panel, sidebar, state, widgets

ctx = sidebar.require()
table = ctx.art.table
classes = list(ctx.art.manifest.classes)

st.title("Class heatmaps")
row_index = widgets.image_picker(table, "heat_row")
row = table.iloc[row_index]
view = Image.open(io.BytesIO(resources.view_png(str(row["path"]), ctx.art.manifest.image_size)))
maps = ctx.art.image_maps(ctx.method, row_index)

st.markdown(
    f"**true:** {row['label']} · **predicted:** {row['pred']} "
    f"({display_value('probability', row['confidence'])}) · "
    + " · ".join(f"logit {c} = {row[f'logit_{c}']:+.3f}" for c in classes)
)
image_name = str(row["path"]).rsplit("/", 1)[-1]
links.copy_link(
    "heatmaps",
    ctx,
    {"image": image_name, "class": str(st.session_state.get(state.HEAT_CLASS, ""))},
)
review_panel.verdict_editor(ctx, str(row["path"]), "heat_review")
shared_range = st.toggle(
    "Same colour range for every class",
    value=True,
    key="heat_shared",
    help="Compare classes on one scale instead of each map's own range.",
)
widgets.class_map_grid(
    maps,
    view,
    classes,
    ctx.colorscale,
    ctx.opacity,
    shared_range,
    "heat",
    ctx.record,
    widgets.classes_to_show(row, classes, "heat_classes"),
    ctx.every_class_method,
)

st.subheader("Difference map")
if not ctx.record.additive:
    st.info(
        f"{ctx.record.title} maps are {map_meaning(ctx.record)}, so their difference means "
        "nothing; choose a method whose maps average to the logits (exact CAM) in the sidebar "
        "for the difference map, whose mean is the logit margin."
    )
    st.stop()
pick = st.columns(2)
if st.session_state.get(state.HEAT_CLASS) not in classes:
    st.session_state[state.HEAT_CLASS] = str(row["pred"])
class_a = pick[0].selectbox("Class A", classes, key=state.HEAT_CLASS)
class_b = pick[1].selectbox(
    "Class B",
    classes,
    index=classes.index(str(row["label"]))
    if row["label"] != row["pred"]
    else (1 if classes.index(str(row["pred"])) == 0 else 0),
    key="heat_b",
)
a, b = classes.index(class_a), classes.index(class_b)
diff = difference_figure(
    maps[a], maps[b], view, class_a, class_b, ctx.opacity, ctx.record.placement
)
st.plotly_chart(diff, key="heat_diff")
margin = float(row[f"logit_{class_a}"] - row[f"logit_{class_b}"])
st.caption(
    f"Red cells push towards **{class_a}**, blue towards **{class_b}**. The mean of this map is "
    f"{float((maps[a] - maps[b]).mean()):+.3f}, which equals the logit margin "
    f"logit({class_a}) − logit({class_b}) = {margin:+.3f} (up to float16 storage)."
)
st.download_button(
    "Difference map (HTML)",
    lambda: figure_html(diff),
    file_name=f"diff_{row_index}.html",
    mime="text/html",
    key="heat_diff_dl",
)
