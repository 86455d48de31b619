"""Review errors: step through the misclassified images and judge each with one click."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cam_core.present.display import display_value
from cam_core.review.reviews import VERDICTS
from cam_core.review.selection import errors
from dashboard import links, resources, review_panel, sidebar, state

ctx = sidebar.require()
table = ctx.art.table
classes = list(ctx.art.manifest.classes)

st.title("Review errors")
controls = st.columns([1.2, 1.2, 2])
order = controls[0].radio(
    "Order",
    ["loss", "suspected label error first"],
    key="rev_order",
    horizontal=True,
    help="Worst loss first, or by cleanlab's label quality (lowest first).",
)
unreviewed_only = controls[1].toggle("Unreviewed only", key="rev_unreviewed")
verdicts = review_panel.reviews(ctx)
queue = review_panel.annotated(ctx, verdicts, errors(table, "loss").index)
if order != "loss":
    queue = queue.sort_values("label_quality", kind="stable")
if unreviewed_only:
    queue = queue[queue["verdict"] == ""]
if queue.empty:
    st.success("Nothing left to review here." if unreviewed_only else "No error to review.")
    st.stop()

paths = [str(p) for p in queue["path"]]
linked = st.session_state.pop(state.LINK_IMAGE, None)
if linked in [p.rsplit("/", 1)[-1] for p in paths]:
    st.session_state["rev_pos"] = [p.rsplit("/", 1)[-1] for p in paths].index(linked)
position = min(int(st.session_state.get("rev_pos", 0)), len(paths) - 1)
row = queue.iloc[position]
row_index = table.index.get_loc(queue.index[position])
path = str(row["path"])
name = path.rsplit("/", 1)[-1]
done = int((queue["verdict"] != "").sum())
controls[2].progress(done / len(queue), text=f"{done} of {len(queue)} judged")
links.copy_link("review", ctx, {"image": name})


def _go(step: int) -> None:
    st.session_state["rev_pos"] = max(0, min(len(paths) - 1, position + step))


nav = st.columns([1, 1, 4])
nav[0].button("← Previous", key="rev_prev", on_click=_go, args=(-1,), disabled=position == 0)
nav[1].button(
    "Next →", key="rev_next", on_click=_go, args=(1,), disabled=position >= len(paths) - 1
)
nav[2].markdown(f"Image **{position + 1}** of {len(paths)}: `{name}`")

images = st.columns(3)
images[0].image(
    resources.view_png(path, ctx.art.manifest.image_size), caption="image", width="stretch"
)
for column, (label, role) in zip(
    images[1:], ((row["pred"], "predicted"), (row["label"], "given label")), strict=True
):
    png = resources.overlay_png(
        ctx.key,
        ctx.version,
        ctx.method,
        row_index,
        classes.index(str(label)),
        ctx.colorscale,
        ctx.opacity,
    )
    column.image(
        png,
        caption=f"{ctx.record.title}: {label} ({role})",
        width="stretch",
    )
rank = row["label_issue_rank"]
suspect = "" if pd.isna(rank) else f" · suspected label error #{int(rank)}"
st.markdown(
    f"**given label:** {row['label']} · **predicted:** {row['pred']} "
    f"({display_value('probability', row['confidence'])}) · "
    f"label quality {display_value('score', row['label_quality'])}{suspect}"
)
current = verdicts.get(path)
st.markdown(review_panel.describe(current))
if not review_panel.may_record():
    if state.presenting():
        st.info("Present mode: verdicts are shown, not edited.")
    else:
        st.info("You are a viewer: you read the verdicts; reviewers record them.")
    st.stop()

details = st.columns([1, 1, 2])
corrected = details[0].selectbox(
    "Corrected label (for a label error)",
    classes,
    index=classes.index(str(row["pred"])),
    key=f"rev_label_{row_index}",
)
tags = details[1].text_input("Tags", key=f"rev_tags_{row_index}", placeholder="comma-separated")
note = details[2].text_input("Note", key=f"rev_note_{row_index}")
st.caption("One click saves the verdict (with the fields above) and moves to the next image.")
buttons = st.columns(len(VERDICTS))
for column, verdict in zip(buttons, VERDICTS, strict=True):
    if column.button(
        verdict.capitalize(),
        key=f"rev_set_{verdict.replace(' ', '_')}",
        type="primary" if current is not None and current.verdict == verdict else "secondary",
        width="stretch",
    ):
        saved = review_panel.save(
            ctx,
            path,
            verdict,
            corrected_label=str(corrected) if verdict == "label error" else None,
            tags=str(tags).split(","),
            note=str(note),
        )
        if saved:
            if not unreviewed_only:
                _go(1)
            st.rerun()
