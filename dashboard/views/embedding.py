"""Embedding map: every validation image placed by what the model sees, coloured by any fact
of the analysis; click an image for its maps, select a group to open it in the Gallery."""

from __future__ import annotations

import io

import numpy as np
import streamlit as st
from PIL import Image

from cam_core.analysis.artifacts import DUPLICATES_FILE, EMBEDDING_FILE, REFERENCE_TABLE_FILE
from cam_core.present.display import display_value, method_title, unfamiliar_words
from cam_core.present.figures import embedding_figure
from cam_core.present.summaries import finding_headlines
from cam_core.review.selection import GalleryFilter
from dashboard import links, pages, resources, review_panel, sidebar, state, widgets

ctx = sidebar.require()
table, manifest = ctx.art.table, ctx.art.manifest
classes = list(manifest.classes)

st.title("Embedding map")
coords = ctx.art.array(EMBEDDING_FILE)
if coords is None:
    st.info(
        "This analysis has no embedding map (it was made before artifact format 3); "
        "re-running `python -m cam_core analyze` adds it, with familiarity and near-duplicates."
    )
    st.stop()

title = method_title(ctx.method, manifest.methods)
colours = {
    "true class": "label",
    "prediction": "pred",
    "correct or wrong": "correct",
    "confidence": "confidence",
    "loss": "loss",
    "familiarity": "familiarity",
    "unfamiliar": "unfamiliar",
    "near-duplicate": "near_duplicate",
    f"pointing hit ({title})": f"pointing_hit.{ctx.method}",
    f"deletion AUC ({title})": f"deletion_auc.{ctx.method}",
    f"insertion AUC ({title})": f"insertion_auc.{ctx.method}",
    "suspected label error": "",
    "verdict": "",
}
colours = {k: v for k, v in colours.items() if not v or v in table.columns}
if st.session_state.get(state.EMBED_COLOUR) not in colours:
    st.session_state[state.EMBED_COLOUR] = next(iter(colours))
colour = str(st.selectbox("Colour by", list(colours), key=state.EMBED_COLOUR))
links.share("embedding", ctx, {"colour": colour})

if colours[colour]:
    figure = resources.embedding_fig(ctx.key, ctx.version, colours[colour], colour)
else:  # verdicts change every minute and are never cached
    listing = review_panel.annotated(ctx, review_panel.reviews(ctx))
    values = (
        listing["verdict"].replace("", "unreviewed")
        if colour == "verdict"
        else listing["label_issue_rank"].notna()
    )
    names = listing["path"].astype(str).str.rsplit("/", n=1).str[-1]
    hover = names + " · true " + listing["label"].astype(str) + " → " + listing["pred"]
    figure = embedding_figure(np.asarray(coords), values, colour, hover.tolist())
event = st.plotly_chart(
    figure, key="emb_map", on_select="rerun", selection_mode=("points", "box", "lasso")
)
st.caption(
    f"{manifest.embedding.get('method', 't-SNE')} of the features the classifier head reads; "
    "images the model sees alike lie together. Click a point for its maps; draw a box or a "
    "lasso to select a group."
)
points = event.selection.points if event and event.selection else []
chosen = sorted({int(p["customdata"]) for p in points if p.get("customdata") is not None})
if len(chosen) > 1:
    if st.button(
        f"Open these {len(chosen)} images in the Gallery", key="emb_gallery", type="primary"
    ):
        pages.open_in_gallery(GalleryFilter(rows=tuple(chosen)))
elif len(chosen) == 1:
    row_index = chosen[0]
    row = table.iloc[row_index]
    st.subheader(str(row["path"]).rsplit("/", 1)[-1])
    st.markdown(
        f"**true:** {row['label']} · **predicted:** {row['pred']} "
        f"({display_value('probability', row['confidence'])})"
        + (f" · {unfamiliar_words(row['less_familiar_than'])}" if "familiarity" in row else "")
    )
    view = Image.open(io.BytesIO(resources.view_png(str(row["path"]), manifest.image_size)))
    widgets.class_map_grid(
        ctx.art.image_maps(ctx.method, row_index),
        view,
        classes,
        ctx.colorscale,
        ctx.opacity,
        ctx.record.additive,
        "emb",
        ctx.record,
        widgets.classes_to_show(row, classes, "emb_classes"),
        ctx.every_class_method,
    )
    if st.button("Open in class heatmaps", key="emb_open"):
        pages.open_image(row_index)

st.subheader("Odd ones out and near-copies")
record = manifest.familiarity
for col, headline in zip(st.columns(3), finding_headlines(table, manifest), strict=False):
    col.metric(headline.label, headline.value, help=headline.help)
if record is not None and not record.available:
    st.caption(f"No familiarity figures: {record.note}.")
buttons = st.columns(2)
if buttons[0].button("Unfamiliar images in the Gallery", key="emb_unfamiliar"):
    pages.open_in_gallery(GalleryFilter(unfamiliar_only=True, sort_by="confidence"))
if buttons[1].button("Near-duplicates in the Gallery", key="emb_duplicates"):
    pages.open_in_gallery(GalleryFilter(duplicates_only=True))

pairs = ctx.art.extra_table(DUPLICATES_FILE)
if pairs is not None and len(pairs):
    reference = ctx.art.extra_table(REFERENCE_TABLE_FILE)
    st.markdown(f"**Closest pairs** (of {len(pairs)}; cosine distance of image signatures)")
    for _, pair in pairs.head(10).iterrows():
        first = str(table.iloc[int(pair["row"])]["path"])
        training = pair["kind"] == "training"
        if training and reference is not None:
            second = str(reference.iloc[int(pair["other"])]["path"])
        else:
            second = str(table.iloc[int(pair["other"])]["path"])
        shown = st.columns([1, 1, 3])
        shown[0].image(
            resources.view_png(first, manifest.image_size), caption=first.rsplit("/", 1)[-1]
        )
        shown[1].image(
            resources.view_png(second, manifest.image_size),
            caption=f"{second.rsplit('/', 1)[-1]} ({pair['kind']})",
        )
        shown[2].caption(f"distance {pair['distance']:.4f}")
