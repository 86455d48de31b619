"""Try your photos: uploads and image URLs, with the prediction and every class map."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from PIL import Image

from cam_core.analysis.predict import placed, predict_images
from cam_core.errors import CamLensError
from cam_core.intake.fetch import FetchConfig, fetch_image
from cam_core.intake.images import decode_image
from cam_core.modelling.model_files import LoadedModel
from cam_core.present.display import display_value, unfamiliar_warning, unfamiliar_words
from cam_core.present.figures import figure_html, probability_figure
from dashboard import resources, sidebar, widgets

ctx = sidebar.require()
manifest = ctx.art.manifest

st.title("Try your photos")
try:
    loaded: LoadedModel = resources.model(manifest.model_dir, manifest.model_sha256)
except CamLensError as exc:
    st.error(f"The model of this analysis cannot be loaded: {exc}")
    st.stop()
if loaded.card.weights_sha256 != manifest.model_sha256:
    st.warning(
        "The model folder changed since this analysis was made; predictions use the "
        "current weights."
    )

st.caption(
    f"Classes: {', '.join(loaded.card.classes)} · images are centre-cropped to a square "
    f"and resized to {loaded.card.image_size} px, exactly as the model sees them."
)
uploads = st.file_uploader(
    "Upload images (JPEG, PNG, WebP, GIF, BMP)",
    accept_multiple_files=True,
    key="try_upload",
)
url_cols = st.columns([4, 1], vertical_alignment="bottom")
url = url_cols[0].text_input(
    "…or paste an image URL", key="try_url", placeholder="https://example.com/cat.jpg"
)
fetch_clicked = url_cols[1].button("Fetch", key="try_fetch", width="stretch")

inputs: list[tuple[str, Image.Image]] = []
for upload in uploads or []:
    try:
        inputs.append((upload.name, decode_image(upload.getvalue(), name=upload.name)))
    except CamLensError as exc:
        st.error(str(exc))
if url and (fetch_clicked or st.session_state.get("try_last_url") == url):
    st.session_state["try_last_url"] = url
    try:
        inputs.append((url, fetch_image(url, FetchConfig())))
    except CamLensError as exc:
        st.error(str(exc))

if not inputs:
    st.info("Nothing to show yet: upload a photo or paste a link.")
    st.stop()

try:
    predictions = predict_images(loaded, inputs, method=ctx.method, layer=ctx.record.layer)
except CamLensError as exc:
    st.error(f"{ctx.record.title} cannot explain this model: {exc}")
    st.stop()
ground = resources.familiar_ground(ctx.key, ctx.version)
if isinstance(ground, str):
    st.caption(f"No familiarity figure for these photos: {ground}")
else:
    predictions = placed(predictions, ground)
for n, prediction in enumerate(predictions):
    with st.container(border=True):
        name = Path(prediction.source).name if "://" not in prediction.source else prediction.source
        confidence = display_value("probability", prediction.probs.max())
        where = prediction.placement
        if where is not None and where.unfamiliar:
            st.warning(unfamiliar_warning(where.less_familiar_than), icon=":material/warning:")
        st.subheader(f"{name}: {prediction.pred} ({confidence})")
        if where is not None:
            verdict = "unfamiliar" if where.unfamiliar else "familiar ground"
            st.caption(f"Familiarity: {unfamiliar_words(where.less_familiar_than)} ({verdict}).")
        top = st.columns([1, 2])
        top[0].image(prediction.view, caption="model input", width="stretch")
        bars = probability_figure(prediction.classes, prediction.probs)
        with top[1]:
            st.plotly_chart(bars, key=f"try_probs_{n}")
            st.download_button(
                "Probabilities (HTML)",
                figure_html(bars),
                file_name="probabilities.html",
                mime="text/html",
                key=f"try_probs_dl_{n}",
            )
        widgets.class_map_grid(
            prediction.maps,
            prediction.view,
            prediction.classes,
            ctx.colorscale,
            ctx.opacity,
            shared_range=True,
            key=f"try_{n}",
            record=ctx.record,
            every_class_method=ctx.every_class_method,
        )

marks = tuple(
    (p.placement.coords[0], p.placement.coords[1], Path(p.source).name[:24])
    for p in predictions
    if p.placement is not None and p.placement.coords is not None
)
if marks:
    st.subheader("Where your photos land")
    st.plotly_chart(
        resources.embedding_fig(ctx.key, ctx.version, "label", "true class", marks),
        key="try_map",
    )
    st.caption(
        "The validation images by what the model sees (Embedding map), your photos as stars: "
        "placed among the images whose features are nearest to theirs."
    )
