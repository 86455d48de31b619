"""Explanation quality: can the analyst believe these maps? Scores, baselines, sanity badges,
and one image's deletion/insertion, step by step."""

from __future__ import annotations

import streamlit as st

from cam_core.errors import CamLensError
from cam_core.present.display import quality_note
from cam_core.present.figures import perturbation_figure
from cam_core.present.tables import quality_by_class_display, quality_display
from dashboard import resources, sidebar, widgets

ctx = sidebar.require()
table, manifest = ctx.art.table, ctx.art.manifest

st.title("Explanation quality")
if not manifest.quality:
    st.info(
        "This analysis was run without the quality metrics. Rerun it with "
        "`python -m cam_core analyze … ` (without `--no-quality`) to score the maps."
    )
    st.stop()

st.markdown(
    "**Localisation** (where ground-truth masks exist): *pointing game*, the share of images "
    "whose true-class map peaks on the marked part; *energy in mask*, the share of the map's "
    "positive mass inside it. **Faithfulness** (Petsiuk et al., 2018): remove (*deletion*) or "
    "reveal (*insertion*) pixels in order of map value and follow the probability of the true "
    "class. **Sanity** (Adebayo et al., 2018): the head and then the last block are "
    "re-initialised, and the maps compared with the originals."
)
widgets.display_table(quality_display(manifest), "qual_table")
st.caption(quality_note(manifest.evaluation))

st.subheader("Per class")
widgets.display_table(quality_by_class_display(table, ctx.method), "qual_by_class")
st.caption(f"{ctx.record.title} (the method chosen in the sidebar).")

st.subheader("Deletion and insertion, step by step")
row_index = widgets.image_picker(table, "qual_row")
steps = int(manifest.evaluation.get("steps", 16))
try:
    curves, deleted, inserted = resources.perturbation_view(
        ctx.key, ctx.version, ctx.method, row_index, steps
    )
except CamLensError as exc:
    st.error(f"The model of this analysis cannot be loaded: {exc}")
    st.stop()
step = int(st.slider("Step", 0, steps, steps // 4, key="qual_step"))
cols = st.columns([1, 1, 2])
share = curves.fractions[step]
cols[0].image(
    deleted[step],
    caption=f"deletion: top {share:.0%} removed, p = {curves.deletion[0, step]:.3f}",
    width="stretch",
)
cols[1].image(
    inserted[step],
    caption=f"insertion: top {share:.0%} revealed, p = {curves.insertion[0, step]:.3f}",
    width="stretch",
)
with cols[2]:
    st.plotly_chart(
        perturbation_figure(
            curves.fractions,
            curves.deletion[0],
            curves.insertion[0],
            step,
            f"{ctx.record.title}: true class {table.iloc[row_index]['label']}",
        ),
        key="qual_curve",
    )
