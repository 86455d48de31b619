"""Who may do what on a shared dashboard: reviewers record verdicts, viewers read.

Roles come from configuration, as lists of e-mail addresses or domains (``alice@lab.org``,
``@lab.org`` or ``lab.org``). A signed-in identity listed as a reviewer is a reviewer; listed as
a viewer, or not listed at all, a viewer (``default`` may make every signed-in user a
reviewer). Without sign-in there is one local user, a reviewer, as on a laptop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cam_core.errors import AccessError

__all__ = ["REVIEWER", "ROLES", "VIEWER", "RoleConfig", "role_of"]

REVIEWER = "reviewer"
VIEWER = "viewer"
ROLES = (REVIEWER, VIEWER)


def _entries(raw: Any, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str) or not all(isinstance(item, str) for item in raw):
        raise AccessError(f"roles: {key} must be a list of e-mail addresses or domains")
    cleaned = tuple(item.strip().casefold() for item in raw if item.strip())
    bad = [item for item in cleaned if item.count("@") > 1 or item.endswith("@")]
    if bad:
        raise AccessError(f"roles: {key} has an entry that is no address or domain: {bad[0]}")
    return cleaned


@dataclass(frozen=True)
class RoleConfig:
    """The configured roles.

    Attributes:
        reviewers: addresses or domains that record verdicts.
        viewers: addresses or domains that only read.
        default: the role of a signed-in identity listed in neither.
    """

    reviewers: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()
    default: str = VIEWER

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RoleConfig:
        """Read ``reviewers``, ``viewers`` and ``default_role`` (the dashboard's secrets).

        Raises:
            AccessError: an entry or the default that is not valid.
        """
        default = str(raw.get("default_role", VIEWER)).strip().casefold()
        if default not in ROLES:
            raise AccessError(f"roles: default_role must be {' or '.join(ROLES)}, not {default!r}")
        return cls(
            reviewers=_entries(raw.get("reviewers"), "reviewers"),
            viewers=_entries(raw.get("viewers"), "viewers"),
            default=default,
        )


def _matches(identity: str, entry: str) -> bool:
    if "@" in entry and not entry.startswith("@"):
        return identity == entry
    domain = entry.removeprefix("@")
    return identity.rpartition("@")[2] == domain


def role_of(identity: str, config: RoleConfig) -> str:
    """The role of a signed-in ``identity`` (an e-mail address): reviewer when a reviewer entry
    matches it, viewer when a viewer entry does, else the default. An exact address wins over
    a domain (``alice@lab.org`` as a viewer stays a viewer even if ``lab.org`` reviews)."""
    who = identity.strip().casefold()
    if not who:
        return VIEWER
    for entries_exact in (True, False):
        for role, entries in ((VIEWER, config.viewers), (REVIEWER, config.reviewers)):
            for entry in entries:
                exact = "@" in entry and not entry.startswith("@")
                if exact == entries_exact and _matches(who, entry):
                    return role
    return config.default
