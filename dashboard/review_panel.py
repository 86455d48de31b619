"""Verdict widgets shared by the pages that show validation images, and the annotated table.

The review store is opened once per analysis and model (``st.cache_resource``); a damaged or
locked review file shows one error line and the pages keep working without verdicts.
"""

from __future__ import annotations

import getpass

import pandas as pd
import streamlit as st

from cam_core.errors import ReviewStoreError
from cam_core.review.reviews import VERDICTS, Review, ReviewStore, with_reviews
from dashboard import access, resources, state

NO_VERDICT = "—"


def default_reviewer() -> str:
    """The OS user name, the sidebar's default reviewer."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "analyst"


def reviewer() -> str:
    """Who is reviewing: the signed-in identity, else the sidebar's name field."""
    who = access.current()
    if who.signed_in:
        return who.identity
    return str(st.session_state.get(state.REVIEWER) or default_reviewer()).strip() or "analyst"


def may_record() -> bool:
    """Whether this session shows verdict controls: a role that records verdicts, not in
    present mode (every page hides the controls otherwise)."""
    return access.current().can_record and not state.presenting()


def store(ctx: state.Context) -> ReviewStore | None:
    """The analysis's review store, or None (with one error line) when it cannot be used."""
    try:
        return resources.review_store(ctx.key, ctx.art.manifest.model_sha256)
    except ReviewStoreError as exc:
        _report(exc)
        return None


_SHOWN = "_review_errors_shown"


def new_run() -> None:
    """Called by the entry point on every run: each run shows a review-file error once."""
    st.session_state[_SHOWN] = set()


def _report(exc: ReviewStoreError) -> None:
    shown = st.session_state.setdefault(_SHOWN, set())
    if str(exc) not in shown:
        st.error(f"Verdicts are unavailable: {exc}")
        shown.add(str(exc))


def reviews(ctx: state.Context) -> dict[str, Review]:
    """Every verdict of the analysed model ({} when the review file cannot be used)."""
    current = store(ctx)
    if current is None:
        return {}
    try:
        return current.all()
    except ReviewStoreError as exc:
        _report(exc)
        return {}


LISTED = ("path", "label", "pred", "correct", "confidence", "loss")
"""The columns image lists need (not the per-class logits and probabilities: a copy of those
for 100k images and many classes would cost every rerun tens of MB)."""
OPTIONAL_LISTED = ("breed", "unfamiliar", "less_familiar_than", "near_duplicate", "leaked")
"""Listed too where the analysis has them (breeds; familiarity and near-copies, format 3)."""


def annotated(
    ctx: state.Context,
    verdicts: dict[str, Review],
    rows: pd.Index | None = None,
    extra: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The table's listing columns (of ``rows``, default all, plus ``extra`` ones such as the
    slice a filter needs) with verdict, review tags and the suspected-label-error rank and
    label quality."""
    table = ctx.art.table
    columns = [c for c in (*LISTED, *OPTIONAL_LISTED, *extra) if c in table.columns]
    base = table.loc[:, columns] if rows is None else table.loc[rows, columns]
    joined = with_reviews(base, verdicts)
    issues = resources.label_issues(ctx.key, ctx.version)
    return joined.join(issues)


def save(ctx: state.Context, path: str, verdict: str, **fields: object) -> bool:
    """Save a verdict as the sidebar's reviewer; False (with an error line) when it failed or
    this session's role does not allow it (refused and logged, however it was sent)."""
    who = access.current()
    if not who.can_record:
        access.refuse(who, "record verdicts", path)
        return False
    current = store(ctx)
    if current is None:
        return False
    try:
        current.save(path, verdict, reviewer(), **fields)  # type: ignore[arg-type]
    except (ReviewStoreError, ValueError) as exc:
        st.error(f"The verdict was not saved: {exc}")
        return False
    return True


def _clear(ctx: state.Context, path: str) -> None:
    who = access.current()
    if not who.can_record:
        access.refuse(who, "remove verdicts", path)
        return
    current = store(ctx)
    if current is not None:
        try:
            current.clear(path, reviewer())
        except ReviewStoreError as exc:
            st.error(f"The verdict was not removed: {exc}")


def describe(review: Review | None) -> str:
    """One line: the verdict, corrected label, tags, who and when."""
    if review is None:
        return "Not reviewed yet."
    parts = [f"**{review.verdict}**"]
    if review.corrected_label:
        parts.append(f"corrected label: {review.corrected_label}")
    if review.tags:
        parts.append("tags: " + ", ".join(review.tags))
    parts.append(f"by {review.reviewer}, {review.updated_at.replace('T', ' ')}")
    return " · ".join(parts)


def quick_verdict(ctx: state.Context, path: str, current: Review | None, key: str) -> None:
    """A compact verdict select box for an image card; choosing saves at once."""

    def changed() -> None:
        choice = st.session_state[key]
        if choice == NO_VERDICT:
            _clear(ctx, path)
        else:
            save(
                ctx,
                path,
                choice,
                corrected_label=current.corrected_label if current else None,
                tags=current.tags if current else (),
                note=current.note if current else "",
            )

    if not may_record():
        st.caption(describe(current))
        return
    options = [NO_VERDICT, *VERDICTS]
    st.session_state[key] = current.verdict if current else NO_VERDICT
    st.selectbox("Verdict", options, key=key, on_change=changed, label_visibility="collapsed")


def verdict_editor(ctx: state.Context, path: str, key: str) -> None:
    """The full verdict form of one image: verdict, corrected label, tags, note, history."""
    current_store = store(ctx)
    if current_store is None:
        return
    try:
        current = current_store.get(path)
    except ReviewStoreError as exc:
        _report(exc)
        return
    if not may_record():
        st.markdown(f"**Verdict** · {describe(current)}")
        return
    classes = list(ctx.art.manifest.classes)
    with st.form(key=f"{key}_form", border=True):
        st.markdown(f"**Verdict** · {describe(current)}")
        verdict = st.radio(
            "Verdict",
            VERDICTS,
            index=VERDICTS.index(current.verdict) if current else 0,
            horizontal=True,
            key=f"{key}_verdict",
            label_visibility="collapsed",
        )
        cols = st.columns([1, 1])
        label_options = [NO_VERDICT, *classes]
        corrected = cols[0].selectbox(
            "Corrected label (for a label error)",
            label_options,
            index=label_options.index(current.corrected_label)
            if current and current.corrected_label in classes
            else 0,
            key=f"{key}_label",
        )
        tags = cols[1].text_input(
            "Tags (comma-separated)",
            value=", ".join(current.tags) if current else "",
            key=f"{key}_tags",
        )
        note = st.text_area("Note", value=current.note if current else "", key=f"{key}_note")
        buttons = st.columns([1, 1, 4])
        saved = buttons[0].form_submit_button("Save verdict", type="primary")
        cleared = buttons[1].form_submit_button("Remove")
    if saved and save(
        ctx,
        path,
        str(verdict),
        corrected_label=None if corrected == NO_VERDICT else str(corrected),
        tags=[t for t in str(tags).split(",")],
        note=str(note),
    ):
        st.toast(f"Saved: {verdict}")
        st.rerun()
    if cleared:
        _clear(ctx, path)
        st.rerun()
