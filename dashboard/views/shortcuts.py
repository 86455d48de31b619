"""What the model relies on: shortcut candidates from the maps of the whole analysis, each
tested by removing and transplanting its region, and the slices of the data where the model
fails most; every finding opens its images in the Gallery."""

from __future__ import annotations

import numpy as np
import streamlit as st

from cam_core.evaluation.shortcuts import Verdict
from cam_core.evaluation.slices import MIN_SLICE_IMAGES
from cam_core.present.display import region_words
from cam_core.present.figures import region_figure
from cam_core.present.tables import shortcut_display, slices_display
from cam_core.review.selection import GalleryFilter
from dashboard import links, pages, resources, sidebar, state, widgets

ctx = sidebar.require()
manifest = ctx.art.manifest

st.title("Shortcuts")
st.caption(
    "What the model relies on: regions its maps keep returning to, tested by changing the "
    "images, and the groups of images where it fails most."
)
reliance = resources.reliance(ctx.key, ctx.version)
if isinstance(reliance, str):
    st.info(reliance)
    st.stop()
search = reliance.search
links.copy_link("shortcuts", ctx, {"finding": str(st.session_state.get(state.SHORTCUT_PICK, 0))})

planted = manifest.data.get("shortcut")
if isinstance(planted, dict):
    st.caption(
        f"This demo planted a mark on {planted.get('rate_breed', 0):.0%} of the "
        f"{planted.get('breed')} images (and {planted.get('rate_others', 0):.0%} of the others), "
        f"{planted.get('corner')}."
    )

st.subheader("Shortcut candidates")
if search.skipped:
    st.warning(f"No shortcut search: {search.skipped}")
else:
    found = search.shortcuts
    st.markdown(
        f"**{len(found)}** shortcut{'s' if len(found) != 1 else ''} among "
        f"{len(search.findings)} candidates ({ctx.art.manifest.methods[search.method].title} "
        f"maps, {'with' if search.masks else 'without'} ground-truth masks)."
        if search.method in manifest.methods
        else f"**{len(found)}** shortcuts among {len(search.findings)} candidates."
    )
    st.caption(
        "A candidate is a region where a class's maps concentrate. It is a **shortcut** when "
        "it lies off the animal (or, without masks, where only this class keeps looking) and "
        "removing it or pasting it onto other classes' images moves the prediction beyond "
        f"chance: the 95% intervals of at most {search.settings.get('sample_n', '?')} images "
        "per test, against a control (the same fill at a random place; the region pasted "
        "from other classes' images)."
    )
    widgets.display_table(shortcut_display(search), "sc_table")
    if search.findings:
        names = [
            f"{i + 1}. {f.class_name}, {region_words(f.box)}: {f.verdict.value}"
            for i, f in enumerate(search.findings)
        ]
        if not 0 <= int(st.session_state.get(state.SHORTCUT_PICK, 0)) < len(names):
            st.session_state[state.SHORTCUT_PICK] = 0
        pick = st.selectbox(
            "Candidate",
            range(len(names)),
            format_func=lambda i: names[i],
            key=state.SHORTCUT_PICK,
        )
        finding = search.findings[int(pick)]
        left, right = st.columns([3, 2])
        left.plotly_chart(
            region_figure(
                np.asarray(finding.mean_map),
                finding.box,
                f"Where the {finding.class_name} maps concentrate (class mean)",
            ),
            key="sc_region",
        )
        with right:
            if finding.verdict is Verdict.SHORTCUT:
                st.error(
                    f"The model leans on this region to say {finding.class_name}, and the "
                    "region is not the animal."
                )
            removal, transplant = finding.removal, finding.transplant
            if removal is not None:
                st.metric(
                    "Accuracy lost when the region is removed",
                    f"{removal.accuracy_drop or 0.0:.1%}",
                    help=f"{removal.n} images of {finding.class_name}.",
                )
            if transplant is not None:
                st.metric(
                    f"Other images flipped to {finding.class_name} by the region",
                    f"{transplant.effect:.1%}",
                    help=f"{transplant.n} images; control {transplant.control:.1%}.",
                )
            if finding.rows and st.button(
                f"Open the {len(finding.rows)} images whose map peaks there in the Gallery",
                key="sc_gallery",
                type="primary",
            ):
                pages.open_in_gallery(GalleryFilter(rows=finding.rows))

st.subheader("Weak slices")
slices = reliance.slices
if slices.empty:
    st.info(f"No slice has {MIN_SLICE_IMAGES} images or more (and as many outside it).")
else:
    st.caption(
        "Error rate of each group of images (by breed, folder, file format, size, aspect, "
        "and quartiles of brightness, contrast, colourfulness and sharpness) against the "
        f"rest, with a Wilson 95% interval; groups of {MIN_SLICE_IMAGES} images or more."
    )
    widgets.display_table(slices_display(slices), "sc_slices")
    top = slices.head(20)
    labels = [f"{f} = {v}" for f, v in zip(top["feature"], top["value"], strict=True)]
    chosen = st.selectbox("Slice", range(len(labels)), format_func=lambda i: labels[i])
    if st.button("Open this slice in the Gallery", key="sc_slice_gallery"):
        row = top.iloc[int(chosen)]
        pages.open_in_gallery(GalleryFilter(slice=(str(row["feature"]), str(row["value"]))))
