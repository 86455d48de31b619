"""The progress-callback contract shared by training, analysis and the dashboard."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressFn"]

ProgressFn = Callable[[str, float], None]
"""Called with a short message and the fraction of the whole job done (0 to 1)."""
