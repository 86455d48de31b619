"""What an analysis says the model relies on: its shortcut search and its weak slices, read
back from the artifacts for the Shortcuts page, the report and the ``shortcuts`` command."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cam_core.analysis.artifacts import SLICES_FILE, Artifacts
from cam_core.errors import ArtifactError
from cam_core.evaluation.shortcuts import ShortcutSearch

__all__ = ["Reliance", "reliance_of"]


@dataclass(frozen=True)
class Reliance:
    """The shortcut search and the weak slices of one analysis.

    Attributes:
        search: the ranked candidates (or why there was no search).
        slices: every slice with enough images, worst first
            (:func:`cam_core.evaluation.slices.weak_slices`).
    """

    search: ShortcutSearch
    slices: pd.DataFrame


def reliance_of(artifacts: Artifacts) -> Reliance:
    """Read the shortcut search and weak slices of an analysis.

    Raises:
        ArtifactError: the analysis predates them (artifact format below 4).
    """
    manifest = artifacts.manifest
    slices = artifacts.extra_table(SLICES_FILE)
    if slices is None:
        raise ArtifactError(
            f"{artifacts.folder} has no shortcut search (artifact format "
            f"{manifest.format_version}); run the analysis again with this version"
        )
    search = manifest.shortcuts or ShortcutSearch(
        skipped="the analysis was run without the shortcut search"
    )
    return Reliance(search, slices)
