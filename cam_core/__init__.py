"""cam_core: train CAM-ready classifiers and explain their decisions with class activation maps."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
