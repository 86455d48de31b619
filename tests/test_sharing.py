"""A dashboard a team can share: only allowed folders open, sign-in and roles (AppTest)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cam_core.review.reviews import ReviewStore
from dashboard import pages

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
OUTSIDE = "this folder is outside the folders this server shares"


@pytest.fixture()
def root(
    tmp_path: Path, tiny_artifacts_dir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``root/`` is shared (with the model folder the analysis points to); the original
    analysis folder is not. ``root/alias`` leads to the copy inside, ``root/escape`` outside."""
    shared = tmp_path / "root"
    (shared / "team").mkdir(parents=True)
    shutil.copytree(tiny_artifacts_dir, shared / "team" / "analysis")
    (shared / "alias").symlink_to(shared / "team" / "analysis")
    (shared / "escape").symlink_to(tiny_artifacts_dir)
    monkeypatch.setenv("CAM_LENS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CAM_LENS_ROOTS", os.pathsep.join([str(shared), str(tiny_model_dir)]))
    return shared


def _typed(path: str | Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.selectbox(key="shared_choice").set_value("Another folder…").run()
    at.text_input(key="shared_custom_dir").set_value(str(path)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _refused(at: AppTest) -> bool:
    return any(w.value == OUTSIDE for w in at.warning) and not at.title


def test_typed_paths_open_only_inside_the_shared_folders(
    root: Path, tiny_artifacts_dir: Path
) -> None:
    assert _refused(_typed(tiny_artifacts_dir))  # outside
    assert _refused(_typed(root / "team" / ".." / ".." / tiny_artifacts_dir.name))  # `..`
    assert _refused(_typed(root / "escape"))  # a symlink inside that leads outside
    missing = _typed(root / "not-there")  # inside: it says what is wrong, as before
    assert not _refused(missing) and any("does not exist" in w.value for w in missing.warning)
    at = _typed(root / "alias")  # a symlink inside that leads inside
    assert [t.value for t in at.title] == ["Overview"] and not at.warning


@pytest.mark.parametrize("exists", [True, False])
def test_a_link_to_an_outside_folder_is_refused_without_looking(
    root: Path, tiny_artifacts_dir: Path, exists: bool
) -> None:
    """The same line whether or not the outside folder exists: nothing is read from it."""
    target = tiny_artifacts_dir if exists else tiny_artifacts_dir.parent / "no-such-analysis"
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["analysis"] = str(target)
    at.query_params["page"] = "gallery"
    at.run()
    assert not at.exception
    assert _refused(at)
    inside = AppTest.from_file(APP, default_timeout=120)
    inside.query_params["analysis"] = str(root / "team" / "analysis")
    inside.run()
    assert [t.value for t in inside.title] == ["Overview"]


def test_an_analysis_whose_model_folder_is_not_shared(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_LENS_ROOTS", str(root))  # the model folder is no longer shared
    at = _typed(root / "alias")
    assert [t.value for t in at.title] == ["Overview"]
    assert any(OUTSIDE in w.value for w in at.warning), [w.value for w in at.warning] + [
        e.value for e in at.error
    ]  # the model card
    at.switch_page("views/try_photos.py").run()
    assert any(OUTSIDE in e.value for e in at.error)


AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-secret-of-enough-length",
    "client_id": "cam-lens",
    "client_secret": "secret",
    "server_metadata_url": "http://localhost:9/.well-known/openid-configuration",
}
ROLES = {"reviewers": ["alice@lab.org"], "viewers": ["lab.org"]}


def _signed_in(email: str | None, root: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = AUTH
    at.secrets["cam_lens"] = ROLES
    at.user = {"is_logged_in": False} if email is None else {"is_logged_in": True, "email": email}
    at.query_params["analysis"] = str(root / "team" / "analysis")
    at.query_params["page"] = "review"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_sign_in_is_required_when_configured(root: Path) -> None:
    at = _signed_in(None, root)
    assert [t.value for t in at.title] == ["CAM Lens"]
    assert at.button(key="access_login").label == "Sign in"
    assert not at.sidebar.selectbox  # nothing of the analyses before sign-in


def test_a_reviewer_records_as_the_signed_in_identity(root: Path) -> None:
    at = _signed_in("alice@lab.org", root)
    assert [t.value for t in at.title] == ["Review errors"]
    assert any("Signed in as" in c.value and "reviewer" in c.value for c in at.sidebar.caption)
    assert not [t for t in at.sidebar.text_input if t.key == "shared_reviewer"]  # no free text
    at.button(key="rev_set_fine").click().run()
    assert not at.exception and not at.error
    saved = ReviewStore.beside(root / "team" / "analysis", _sha(root)).all()
    assert [r.reviewer for r in saved.values()] == ["alice@lab.org"]


def test_a_viewer_sees_no_verdict_controls_and_cannot_record(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    at = _signed_in("bob@lab.org", root)
    assert any("viewer" in c.value for c in at.sidebar.caption)
    assert any("You are a viewer" in i.value for i in at.info)
    assert not [b for b in at.button if b.key and b.key.startswith("rev_set_")]
    for page in ("views/heatmaps.py", "views/gallery.py", "views/misclassified.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert not [f for f in at.get("form")], page  # no verdict form
        assert not [s for s in at.selectbox if s.label == "Verdict"], page
    # A verdict sent by a viewer's session in any way (here: the save path the pages use,
    # called directly) is refused and logged, and nothing is written.
    direct = AppTest.from_function(_save_directly, default_timeout=60)
    direct.secrets["auth"] = AUTH
    direct.secrets["cam_lens"] = ROLES
    direct.user = {"is_logged_in": True, "email": "bob@lab.org"}
    with caplog.at_level(logging.WARNING, logger="dashboard.access"):
        direct.run()
    assert direct.session_state["saved"] is False
    assert any("does not allow you to record verdicts" in e.value for e in direct.error)
    assert "refused: bob@lab.org (viewer) tried to record verdicts x.png" in caplog.text
    assert ReviewStore.beside(root / "team" / "analysis", _sha(root)).all() == {}


def _save_directly() -> None:
    import streamlit as st

    from dashboard import review_panel

    st.session_state["saved"] = review_panel.save(None, "x.png", "correct")  # type: ignore[arg-type]


def _sha(root: Path) -> str:
    from cam_core.analysis.artifacts import read_manifest

    return read_manifest(root / "team" / "analysis").model_sha256


def test_without_configuration_the_local_mode_is_unchanged_and_says_so(root: Path) -> None:
    at = _typed(root / "alias")
    assert any(c.value.startswith("Local mode: no sign-in") for c in at.sidebar.caption)
    assert [t for t in at.sidebar.text_input if t.key == "shared_reviewer"]
    assert {p.slug for p in pages.PAGES} >= {"overview", "review"}


def test_present_mode_hides_the_controls_and_the_editing_widgets(root: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["analysis"] = str(root / "team" / "analysis")
    at.query_params["page"] = "heatmaps"
    at.query_params["present"] = "1"
    at.run()
    assert not at.exception and [t.value for t in at.title] == ["Class heatmaps"]
    assert not at.sidebar.selectbox and not at.sidebar.slider and not at.sidebar.text_input
    assert any(c.value.startswith("Presenting ") for c in at.sidebar.caption)
    assert not at.get("form")  # no verdict form
    for page in ("views/gallery.py", "views/misclassified.py", "views/summary.py"):
        at.switch_page(page).run()
        assert not at.exception and not at.sidebar.selectbox, page
        assert not [s for s in at.selectbox if s.label == "Verdict"], page
    at.switch_page("views/review.py").run()
    assert any("Present mode" in i.value for i in at.info)
    assert at.query_params["present"] == "1"  # the page's own link keeps presenting
    normal = AppTest.from_file(APP, default_timeout=120)
    normal.query_params["analysis"] = str(root / "team" / "analysis")
    normal.query_params["page"] = "heatmaps"
    normal.run()
    assert normal.sidebar.selectbox and normal.get("form")


def test_an_unreadable_secrets_file_closes_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secrets file that exists but cannot be parsed must not fall back to the open local
    mode: the dashboard closes with one line (no secrets file at all is the local mode)."""
    from streamlit import config

    from cam_core.errors import AccessError
    from dashboard import access

    class Unparsable:
        def keys(self) -> None:
            raise FileNotFoundError("Error parsing secrets file at secrets.toml")

    broken = tmp_path / "secrets.toml"
    broken.write_text("[auth\nredirect_uri = ")
    real = config.get_option
    files: list[str] = [str(broken)]
    monkeypatch.setattr(
        config, "get_option", lambda key: files if key == "secrets.files" else real(key)
    )
    monkeypatch.setattr(access.st, "secrets", Unparsable())
    with pytest.raises(AccessError, match="^the secrets file cannot be read \\(Error parsing"):
        access.configured()
    files[:] = [str(tmp_path / "absent.toml")]
    assert access.configured() is False and access.current() == access.LOCAL
