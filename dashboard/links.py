"""Links to share: every view that shows one image or a filtered gallery lives in the URL.

Pages write their view into the query parameters (``st.query_params``) on every run, so the
address bar always holds a link to what is on screen; opening such a link in a new session
puts those values into the session state before any page runs (:func:`apply_once`). Which page
writes which parameter is in the page registry (:mod:`dashboard.pages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import streamlit as st

from dashboard import pages, state


def apply_once() -> str | None:
    """On a session's first run, copy the link's parameters into the session state.

    Returns:
        The page script the link names, or None.
    """
    if st.session_state.get(state.LINK_APPLIED):
        return None
    st.session_state[state.LINK_APPLIED] = True
    spec = pages.restore_link(st.query_params.to_dict())
    return spec.script if spec is not None else None


def share(slug: str, ctx: state.Context, extra: Mapping[str, str] | None = None) -> str:
    """Put this view in the address bar and return its full link.

    Args:
        slug: the page's slug (:data:`dashboard.pages.PAGES`).
        ctx: the loaded analysis and method.
        extra: the view's own parameters (image, class, filters), as the registry names them.

    Raises:
        ValueError: a parameter the page's registry entry does not list (it would not be
            restored by opening the link).
    """
    spec = pages.page(slug)
    allowed = {p.name for p in spec.params}
    unknown = [name for name in extra or {} if name not in allowed and spec.query_object is None]
    if unknown:
        raise ValueError(f"page {slug!r} does not restore link parameters {unknown}")
    params = {"page": slug, "analysis": ctx.key, "method": ctx.method}
    if state.presenting():
        params["present"] = "1"
    params.update({k: v for k, v in (extra or {}).items() if v not in ("", None)})
    st.query_params.from_dict(params)
    url = st.context.url or "http://localhost:8501/"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/?{urlencode(params)}"


def copy_link(slug: str, ctx: state.Context, extra: Mapping[str, str] | None = None) -> None:
    """Share the view and show its link with a copy button."""
    link = share(slug, ctx, extra)
    with st.popover("Link to this view", icon=":material/link:"):
        st.caption("Opens exactly this view (analysis, method, image, filters).")
        st.code(link, language=None, wrap_lines=True)
