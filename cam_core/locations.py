"""Where cam_core keeps generated data and the demo run by default, and which folders a
dashboard server shares."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cam_core.errors import FolderNotSharedError

__all__ = ["ROOTS_VARIABLE", "demo_run_dir", "home", "is_shared", "shared_folder", "shared_roots"]

ROOTS_VARIABLE = "CAM_LENS_ROOTS"
"""The folders a dashboard server may open, separated like ``PATH`` (``:`` on Linux)."""
NOT_SHARED = "this folder is outside the folders this server shares"


def home() -> Path:
    """``$CAM_LENS_HOME`` if set, else ``~/.cache/cam-lens``."""
    configured = os.environ.get("CAM_LENS_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cam-lens"


def demo_run_dir(task: str = "species") -> Path:
    """The demo run folder of ``task`` (``model/`` and ``artifacts/`` inside)."""
    return home() / "demo" / task


def shared_roots() -> tuple[Path, ...]:
    """The real paths of the folders a dashboard server shares: ``$CAM_LENS_ROOTS``, else
    ``$CAM_LENS_HOME`` and the folder the server was started in."""
    configured = os.environ.get(ROOTS_VARIABLE, "")
    parts = [p for p in configured.split(os.pathsep) if p.strip()]
    roots = [Path(p).expanduser() for p in parts] if parts else [home(), Path.cwd()]
    return tuple(dict.fromkeys(Path(os.path.realpath(root)) for root in roots))


def shared_folder(path: str | Path, roots: Sequence[Path] | None = None) -> Path:
    """The real path of ``path`` (symlinks and ``..`` resolved) when it lies under a shared
    root; nothing is read from the folder itself.

    Raises:
        FolderNotSharedError: outside every root (the message says no more than that).
    """
    text = str(path)
    if not text.strip() or "\x00" in text:
        raise FolderNotSharedError(NOT_SHARED)
    real = Path(os.path.realpath(Path(text).expanduser()))
    for root in shared_roots() if roots is None else roots:
        if real == root or real.is_relative_to(root):
            return real
    raise FolderNotSharedError(NOT_SHARED)


def is_shared(path: str | Path, roots: Sequence[Path] | None = None) -> bool:
    """Whether :func:`shared_folder` accepts ``path``."""
    try:
        shared_folder(path, roots)
    except FolderNotSharedError:
        return False
    return True
