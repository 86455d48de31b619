"""Every page of the dashboard in one list, read by the router, the links, every page switch and
the tests: adding a page is one entry here and its script in ``views/``.

Each page names the link parameters it writes (``?page=<slug>&…``) and the session-state key
each one restores, so a shared link opens exactly the view it was copied from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import streamlit as st

from cam_core.review.selection import GalleryFilter
from dashboard import state

__all__ = [
    "PAGES",
    "SHARED_PARAMS",
    "PageSpec",
    "Param",
    "go",
    "navigation",
    "open_image",
    "open_in_gallery",
    "page",
    "restore_link",
]


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{value} is outside 0..1")
    return value


@dataclass(frozen=True)
class Param:
    """One link parameter: its name in the URL and the session-state key it restores.

    Attributes:
        name: the URL parameter.
        key: the session-state key the page's widget reads.
        parse: text → the widget's value; a ``ValueError`` leaves the widget as it is.
    """

    name: str
    key: str
    parse: Callable[[str], Any] = str


@dataclass(frozen=True)
class PageSpec:
    """One page.

    Attributes:
        slug: its name in links (``?page=<slug>``).
        script: its file, relative to the dashboard folder.
        title: navigation label and page title.
        icon: a Material icon.
        params: the link parameters it writes besides :data:`SHARED_PARAMS`.
        query_object: for a page whose parameters form one object (the Gallery's filter),
            the function that puts a link's parameters into the session state.
        default: the page a bare address opens.
    """

    slug: str
    script: str
    title: str
    icon: str
    params: tuple[Param, ...] = ()
    query_object: Callable[[Mapping[str, str]], None] | None = field(default=None)
    default: bool = False


def _flag(text: str) -> bool:
    if text.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if text.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not on or off")


SHARED_PARAMS = (
    Param("analysis", state.CHOICE),
    Param("method", state.METHOD),
    Param("present", state.PRESENT, _flag),
)
"""Written by every page: which analysis and which method, and present mode."""

_IMAGE = Param("image", state.LINK_IMAGE)


def _restore_gallery(query: Mapping[str, str]) -> None:
    state.put_gallery_filter(GalleryFilter.from_query(query))


PAGES = (
    PageSpec("overview", "views/overview.py", "Overview", ":material/dashboard:", default=True),
    PageSpec("summary", "views/summary.py", "Summary", ":material/summarize:"),
    PageSpec("misclassified", "views/misclassified.py", "Misclassified", ":material/error:"),
    PageSpec(
        "heatmaps",
        "views/heatmaps.py",
        "Class heatmaps",
        ":material/local_fire_department:",
        (_IMAGE, Param("class", state.HEAT_CLASS)),
    ),
    PageSpec(
        "gallery",
        "views/gallery.py",
        "Gallery",
        ":material/photo_library:",
        query_object=_restore_gallery,
    ),
    PageSpec("review", "views/review.py", "Review errors", ":material/rate_review:", (_IMAGE,)),
    PageSpec("breeds", "views/breeds.py", "Breeds", ":material/pets:"),
    PageSpec(
        "embedding",
        "views/embedding.py",
        "Embedding map",
        ":material/scatter_plot:",
        (Param("colour", state.EMBED_COLOUR),),
    ),
    PageSpec(
        "shortcuts",
        "views/shortcuts.py",
        "Shortcuts",
        ":material/policy:",
        (Param("finding", state.SHORTCUT_PICK, int),),
    ),
    PageSpec("compare", "views/compare.py", "Compare methods", ":material/compare:"),
    PageSpec("quality", "views/quality.py", "Explanation quality", ":material/verified:"),
    PageSpec(
        "calibration",
        "views/calibration.py",
        "Calibration",
        ":material/speed:",
        (Param("threshold", state.CALIBRATION_THRESHOLD, _unit_float),),
    ),
    PageSpec("try", "views/try_photos.py", "Try your photos", ":material/add_a_photo:"),
)
"""Every page, in navigation order."""


def page(slug: str) -> PageSpec:
    """The page called ``slug``.

    Raises:
        KeyError: no such page.
    """
    for spec in PAGES:
        if spec.slug == slug:
            return spec
    raise KeyError(f"no dashboard page {slug!r}")


def navigation() -> Any:
    """The router over :data:`PAGES` (``st.navigation``)."""
    return st.navigation(
        [
            st.Page(spec.script, title=spec.title, icon=spec.icon, default=spec.default)
            for spec in PAGES
        ]
    )


def restore_link(query: Mapping[str, str]) -> PageSpec | None:
    """Put a link's parameters into the session state; returns the page it names, if any.

    Parameters the named page does not write are ignored; a value that cannot be read leaves
    its widget as it is.
    """
    try:
        spec: PageSpec | None = page(str(query.get("page", "")))
    except KeyError:
        spec = None
    params = SHARED_PARAMS + (spec.params if spec is not None else ())
    for param in params:
        text = query.get(param.name)
        if not text:
            continue
        try:
            st.session_state[param.key] = param.parse(str(text))
        except ValueError:
            continue
    if spec is not None and spec.query_object is not None:
        spec.query_object(query)
    return spec


def go(slug: str) -> NoReturn:
    """Switch to the page called ``slug``."""
    st.switch_page(page(slug).script)


def open_in_gallery(flt: GalleryFilter) -> NoReturn:
    """Open the Gallery on exactly the images ``flt`` selects (first page)."""
    state.put_gallery_filter(flt)
    go("gallery")


def open_image(row: int) -> NoReturn:
    """Open one validation image (table row) in the Class heatmaps."""
    st.session_state[state.SELECTED_ROW] = row
    go("heatmaps")
