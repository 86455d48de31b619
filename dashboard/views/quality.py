"""Explanation quality: can the analyst believe these maps? Scores, baselines, sanity badges,
and one image's deletion/insertion, step by step."""

from __future__ import annotations

import streamlit as st

from cam_core.errors import CamLensError
from cam_core.evaluation.suite import quality_by_class, quality_table
from cam_core.figures import perturbation_figure
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

evaluation = manifest.evaluation
st.markdown(
    "**Localisation** (where ground-truth masks exist): *pointing game*, the share of images "
    "whose true-class map peaks on the marked part; *energy in mask*, the share of the map's "
    "positive mass inside it. **Faithfulness** (Petsiuk et al., 2018): remove (*deletion*) or "
    "reveal (*insertion*) pixels in order of map value and follow the probability of the true "
    "class; lower deletion and higher insertion AUC are better. **Sanity** (Adebayo et al., "
    "2018): the head and then the last block are re-initialised; maps that barely change "
    f"(median Spearman ≥ {evaluation.get('sanity_threshold', 0.5)}) explain the image, not "
    "the model."
)
frame = quality_table(manifest.quality)
# Plain words: emoji badges need a colour-emoji font that many servers and browsers lack.
badges = {True: "passed", False: "FAILED", None: "–"}
shown = frame.assign(
    faithful=[badges[v] for v in frame["faithful"]],
    sanity=[badges[v] for v in frame["sanity"]],
)
shown.index = [
    str(manifest.methods.get(name, {}).get("title", f"{name} (baseline)")) for name in frame.index
]
st.dataframe(
    shown,
    column_config={
        "pointing_game": st.column_config.NumberColumn("pointing game", format="percent"),
        "energy_in_mask": st.column_config.NumberColumn("energy in mask", format="percent"),
        "deletion_auc": st.column_config.NumberColumn("deletion AUC ↓", format="%.3f"),
        "insertion_auc": st.column_config.NumberColumn("insertion AUC ↑", format="%.3f"),
        "randomization_spearman": st.column_config.NumberColumn(
            "Spearman after randomisation ↓", format="%.2f"
        ),
        "faithful": st.column_config.TextColumn(
            "faithful", help="Deletion below and insertion above both baselines."
        ),
        "sanity": st.column_config.TextColumn("sanity check"),
    },
    key="qual_table",
)
st.caption(
    f"Deletion/insertion on a seeded sample of {evaluation.get('sample_size', '?')} images "
    f"({evaluation.get('steps', '?')} steps, blurred baseline); sanity check on "
    f"{evaluation.get('sanity_size', '?')} of them. The random and centre rows are maps that "
    "know nothing: a method is worth showing as faithful only where it beats both."
)

st.subheader("Per class")
st.dataframe(
    quality_by_class(table, ctx.method),
    column_config={
        "pointing_game": st.column_config.NumberColumn("pointing game", format="percent"),
        "energy_in_mask": st.column_config.NumberColumn("energy in mask", format="percent"),
        "deletion_auc": st.column_config.NumberColumn("deletion AUC ↓", format="%.3f"),
        "insertion_auc": st.column_config.NumberColumn("insertion AUC ↑", format="%.3f"),
    },
    key="qual_by_class",
)
st.caption(f"{ctx.method_info.get('title', ctx.method)} (the method chosen in the sidebar).")

st.subheader("Deletion and insertion, step by step")
row_index = widgets.image_picker(table, "qual_row")
steps = int(evaluation.get("steps", 16))
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
            f"{ctx.method_info.get('title', ctx.method)}: true class "
            f"{table.iloc[row_index]['label']}",
        ),
        key="qual_curve",
    )
