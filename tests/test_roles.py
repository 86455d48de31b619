"""Roles on a shared dashboard: reviewers record verdicts, viewers read."""

from __future__ import annotations

import pytest

from cam_core.errors import AccessError
from cam_core.review.roles import REVIEWER, VIEWER, RoleConfig, role_of


def test_addresses_and_domains_give_roles() -> None:
    config = RoleConfig.from_mapping(
        {
            "reviewers": ["Alice@Lab.org", "@review.org", "team.net"],
            "viewers": ["bob@review.org", "guests.org"],
        }
    )
    assert role_of("alice@lab.org", config) == REVIEWER  # case does not matter
    assert role_of("ALICE@LAB.ORG ", config) == REVIEWER
    assert role_of("carol@lab.org", config) == VIEWER  # lab.org is not listed as a domain
    assert role_of("dan@review.org", config) == REVIEWER  # domain with @
    assert role_of("erin@team.net", config) == REVIEWER  # domain without @
    assert role_of("erin@sub.team.net", config) == VIEWER  # no sub-domains by accident
    assert role_of("erin@evilteam.net", config) == VIEWER
    assert role_of("bob@review.org", config) == VIEWER  # an address beats its domain
    assert role_of("gus@guests.org", config) == VIEWER
    assert role_of("", config) == VIEWER
    assert role_of("nobody@else.com", config) == VIEWER  # the default


def test_an_address_listed_as_reviewer_beats_a_viewer_domain() -> None:
    config = RoleConfig(reviewers=("ann@big.org",), viewers=("big.org",))
    assert role_of("ann@big.org", config) == REVIEWER
    assert role_of("ben@big.org", config) == VIEWER


def test_the_default_role_and_bad_configuration() -> None:
    everyone = RoleConfig.from_mapping({"default_role": "Reviewer"})
    assert role_of("anyone@x.org", everyone) == REVIEWER
    assert RoleConfig.from_mapping({}) == RoleConfig((), (), VIEWER)
    with pytest.raises(AccessError, match="default_role must be reviewer or viewer"):
        RoleConfig.from_mapping({"default_role": "admin"})
    with pytest.raises(AccessError, match="reviewers must be a list"):
        RoleConfig.from_mapping({"reviewers": "alice@lab.org"})
    with pytest.raises(AccessError, match="viewers must be a list"):
        RoleConfig.from_mapping({"viewers": [1, 2]})
    with pytest.raises(AccessError, match="no address or domain: a@b@c"):
        RoleConfig.from_mapping({"reviewers": ["a@b@c"]})
