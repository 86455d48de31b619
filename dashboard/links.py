"""Links to share: every view that shows one image or a filtered gallery lives in the URL.

Pages write their view into the query parameters (``st.query_params``) on every run, so the
address bar always holds a link to what is on screen; opening such a link in a new session
puts those values into the session state before any page runs (:func:`apply_once`).

Parameters: ``page`` (slug below), ``analysis`` (artifact folder), ``method``, ``image`` (file
name), ``class``, and the gallery's ``conf`` (``low-high``), ``show``, ``true``, ``pred``
(comma-separated classes), ``sort``, ``verdict`` (comma-separated), ``tag``, ``suspected``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import streamlit as st

from dashboard import state

PAGES = {
    "overview": "views/overview.py",
    "misclassified": "views/misclassified.py",
    "heatmaps": "views/heatmaps.py",
    "gallery": "views/gallery.py",
    "review": "views/review.py",
    "breeds": "views/breeds.py",
    "compare": "views/compare.py",
    "quality": "views/quality.py",
    "calibration": "views/calibration.py",
    "try": "views/try_photos.py",
}
"""URL slug → page script."""

_LISTS = {"true": state.GALLERY_TRUE, "pred": state.GALLERY_PRED, "verdict": state.GALLERY_VERDICTS}
_TEXTS = {
    "analysis": state.CHOICE,
    "method": state.METHOD,
    "image": state.LINK_IMAGE,
    "class": state.HEAT_CLASS,
    "show": state.GALLERY_CORRECT,
    "sort": state.GALLERY_SORT,
    "tag": state.GALLERY_TAG,
}


def apply_once() -> str | None:
    """On a session's first run, copy the link's parameters into the session state.

    Returns:
        The page script the link names, or None.
    """
    if st.session_state.get(state.LINK_APPLIED):
        return None
    st.session_state[state.LINK_APPLIED] = True
    params = st.query_params
    for name, key in _TEXTS.items():
        if params.get(name):
            st.session_state[key] = params[name]
    for name, key in _LISTS.items():
        if params.get(name):
            st.session_state[key] = [v for v in params[name].split(",") if v]
    if params.get("conf"):
        try:
            low, high = (float(v) for v in params["conf"].split("-", 1))
            st.session_state[state.GALLERY_CONFIDENCE] = (max(0.0, low), min(1.0, high))
        except ValueError:
            pass
    if params.get("suspected") in ("1", "true", "yes"):
        st.session_state[state.GALLERY_SUSPECTED] = True
    return PAGES.get(params.get("page", ""))


def share(page: str, ctx: state.Context, extra: Mapping[str, str] | None = None) -> str:
    """Put this view in the address bar and return its full link.

    Args:
        page: the page's slug (:data:`PAGES`).
        ctx: the loaded analysis and method.
        extra: the view's own parameters (image, class, filters).
    """
    params = {"page": page, "analysis": ctx.key, "method": ctx.method}
    params.update({k: v for k, v in (extra or {}).items() if v not in ("", None)})
    st.query_params.from_dict(params)
    url = st.context.url or "http://localhost:8501/"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/?{urlencode(params)}"


def copy_link(page: str, ctx: state.Context, extra: Mapping[str, str] | None = None) -> None:
    """Share the view and show its link with a copy button."""
    link = share(page, ctx, extra)
    with st.popover("Link to this view", icon=":material/link:"):
        st.caption("Opens exactly this view (analysis, method, image, filters).")
        st.code(link, language=None, wrap_lines=True)
