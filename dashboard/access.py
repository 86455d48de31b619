"""Sign-in and roles on a shared server, with Streamlit's own ``st.login`` / ``st.user``.

When the operator configures OpenID Connect (an ``[auth]`` section in
``.streamlit/secrets.toml``), every page requires sign-in and the roles of
``[cam_lens]`` (``reviewers``, ``viewers``, ``default_role``; :mod:`cam_core.review.roles`)
decide who records verdicts. Without it the dashboard is a single local user, a reviewer, and
the sidebar says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from cam_core.errors import AccessError, first_line
from cam_core.review.roles import REVIEWER, VIEWER, RoleConfig, role_of

__all__ = ["Access", "configured", "current", "gate", "refuse", "role_config", "sidebar_status"]

log = logging.getLogger(__name__)

ROLES_SECTION = "cam_lens"


@dataclass(frozen=True)
class Access:
    """Who this session is and what it may do.

    Attributes:
        signed_in: sign-in is configured and this session signed in.
        identity: the signed-in e-mail address (empty in local mode).
        name: a display name (the identity's name claim, else the address).
        role: ``reviewer`` or ``viewer``.
    """

    signed_in: bool
    identity: str
    name: str
    role: str

    @property
    def can_record(self) -> bool:
        """Whether verdicts may be recorded from this session."""
        return self.role == REVIEWER


LOCAL = Access(signed_in=False, identity="", name="", role=REVIEWER)
"""The single local user of a dashboard without sign-in."""


def _secrets() -> Mapping[str, Any]:
    """The secrets, or none when there is no secrets file.

    Raises:
        AccessError: a secrets file exists but cannot be read (the dashboard then closes
            rather than run without the sign-in it was probably meant to have).
    """
    try:
        return dict(st.secrets)
    except (FileNotFoundError, KeyError, AttributeError) as exc:
        from streamlit import config

        files = config.get_option("secrets.files") or []
        if any(Path(str(f)).expanduser().is_file() for f in files):
            raise AccessError(f"the secrets file cannot be read ({first_line(exc)})") from None
        return {}


def configured() -> bool:
    """Whether the operator configured sign-in (an ``[auth]`` section in the secrets)."""
    return bool(_secrets().get("auth"))


def role_config() -> RoleConfig:
    """The roles of the ``[cam_lens]`` secrets section.

    Raises:
        AccessError: an entry that is not an address or domain, or an unknown default role.
    """
    section = _secrets().get(ROLES_SECTION) or {}
    return RoleConfig.from_mapping(dict(section))


def current() -> Access:
    """This session's access: the local user without sign-in, else the signed-in identity and
    its role (a viewer while not signed in, and when the roles cannot be read)."""
    if not configured():
        return LOCAL
    user = st.user
    if not user.is_logged_in:
        return Access(signed_in=False, identity="", name="", role=VIEWER)
    identity = str(user.get("email") or user.get("sub") or "")
    name = str(user.get("name") or identity)
    try:
        role = role_of(identity, role_config())
    except AccessError as exc:
        log.error("roles are not valid, %s is a viewer: %s", identity, exc)
        role = VIEWER
    return Access(signed_in=True, identity=identity, name=name, role=role)


def gate() -> Access:
    """Stop the page with a sign-in screen when sign-in is configured and this session has
    not signed in, or with one error line when the configuration cannot be read; this
    session's access otherwise."""
    try:
        access = current()
    except AccessError as exc:
        log.error("sign-in configuration: %s", exc)
        st.error(f"The dashboard is closed: {exc}. The operator needs to fix it.")
        st.stop()
    if not configured() or access.signed_in:
        return access
    st.title("CAM Lens")
    st.markdown(
        "This dashboard is shared with a team: sign in to see the analyses. Reviewers record "
        "verdicts; viewers read every page and download."
    )
    st.button("Sign in", type="primary", key="access_login", on_click=st.login)
    st.stop()
    return access  # not reached


def sidebar_status(access: Access) -> None:
    """Who is signed in and with which role, or that this is the local single-user mode."""
    if not configured():
        st.caption(
            "Local mode: no sign-in, one user (configure `[auth]` in `.streamlit/secrets.toml` "
            "to share this server)."
        )
        return
    st.caption(f"Signed in as **{access.name}** ({access.identity}) · {access.role}")
    if not access.can_record:
        st.caption("Viewers read every page and download; they record no verdicts.")
    st.button("Sign out", key="access_logout", on_click=st.logout)


def refuse(access: Access, action: str, subject: str) -> None:
    """Log and show that ``access`` may not do ``action`` (on ``subject``)."""
    log.warning(
        "refused: %s (%s) tried to %s %s", access.identity or "local", access.role, action, subject
    )
    st.error(f"Your role ({access.role}) does not allow you to {action}.")
