"""Where cam_core keeps generated data and the demo run by default."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["demo_run_dir", "home"]


def home() -> Path:
    """``$CAM_LENS_HOME`` if set, else ``~/.cache/cam-lens``."""
    configured = os.environ.get("CAM_LENS_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cam-lens"


def demo_run_dir(task: str = "species") -> Path:
    """The demo run folder of ``task`` (``model/`` and ``artifacts/`` inside)."""
    return home() / "demo" / task
