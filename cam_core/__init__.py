"""cam_core: train CAM-ready classifiers and explain their decisions with class activation maps."""

from __future__ import annotations

import warnings

__version__ = "0.3.0"

__all__ = ["__version__"]

# fastai 2.8 decorates a few activations with torch.jit.script at import time, and torch 2.14
# warns on each: noise in every run that the user can do nothing about. Only that warning.
warnings.filterwarnings(
    "ignore",
    message=r"`torch\.jit\.script` is deprecated",
    category=FutureWarning,
    module=r"torch\.jit\._script",
)
