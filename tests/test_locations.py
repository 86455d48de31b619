"""Which folders a dashboard server shares: CAM_LENS_ROOTS, symlinks and `..` resolved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cam_core.errors import FolderNotSharedError
from cam_core.locations import is_shared, shared_folder, shared_roots


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """``root/`` (shared) with an analysis and two links, ``outside/`` (not shared)."""
    (tmp_path / "root" / "runs" / "a").mkdir(parents=True)
    (tmp_path / "outside" / "secret").mkdir(parents=True)
    (tmp_path / "root" / "escape").symlink_to(tmp_path / "outside" / "secret")
    (tmp_path / "root" / "alias").symlink_to(tmp_path / "root" / "runs" / "a")
    (tmp_path / "elsewhere").symlink_to(tmp_path / "root" / "runs")
    return tmp_path


def test_inside_outside_dots_and_symlinks(tree: Path) -> None:
    roots = [tree / "root"]
    assert shared_folder(tree / "root" / "runs" / "a", roots) == tree / "root" / "runs" / "a"
    assert shared_folder(tree / "root", roots) == tree / "root"  # the root itself
    assert shared_folder(tree / "root" / "alias", roots) == tree / "root" / "runs" / "a"
    # A link outside the root that leads inside is inside (the real path decides).
    assert shared_folder(tree / "elsewhere" / "a", roots) == tree / "root" / "runs" / "a"
    for outside in (
        tree / "outside" / "secret",
        tree / "root" / ".." / "outside" / "secret",  # `..` escape
        tree / "root" / "escape",  # symlink escape
        tree / "root-sibling",  # a prefix of the name is not a parent
        "",
        "   ",
        "bad\x00name",
    ):
        with pytest.raises(FolderNotSharedError, match="^this folder is outside the folders"):
            shared_folder(outside, roots)
    assert not is_shared(tree / "root" / "escape", roots)
    assert is_shared(tree / "root" / "runs" / "missing", roots)  # inside, whether it exists


def test_the_roots_come_from_the_environment_else_home_and_the_start_folder(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_LENS_HOME", str(tree / "root" / "runs"))
    monkeypatch.chdir(tree / "outside")
    monkeypatch.delenv("CAM_LENS_ROOTS", raising=False)
    assert shared_roots() == (tree / "root" / "runs", tree / "outside")
    assert is_shared(tree / "outside" / "secret") and is_shared(tree / "root" / "alias" / "..")
    assert not is_shared(tree / "root" / "alias" / ".." / "..")  # the link first, then ..
    monkeypatch.setenv("CAM_LENS_ROOTS", os.pathsep.join([str(tree / "root"), "", "~"]))
    assert shared_roots() == (tree / "root", Path.home().resolve())
    assert not is_shared(tree / "outside" / "secret")
    assert is_shared(tree / "root" / "alias")
