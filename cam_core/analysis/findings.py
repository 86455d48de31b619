"""The analysis seen as a whole: how familiar each image is to the model, near-duplicates and
leakage from training, and the 2-D map, from the features of one forward pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cam_core.analysis.artifacts import (
    EMBEDDING_FILE,
    FEATURES_FILE,
    REFERENCE_FEATURES_FILE,
    Artifacts,
    analyses_of_model,
    find_artifact_folders,
    read_artifacts,
)
from cam_core.analysis.cams import ExplainedFiles
from cam_core.analysis.embedding import EmbeddingResult, embed, place
from cam_core.errors import ArtifactError
from cam_core.evaluation.duplicates import KINDS, NEAR_DUPLICATE_DISTANCE, near_duplicates
from cam_core.evaluation.familiarity import (
    REFERENCE_ANALYSED,
    FamiliarityIndex,
    FamiliarityRecord,
    energy_scores,
    less_familiar_than,
    unfamiliar_threshold,
)
from cam_core.locations import home

__all__ = [
    "FINDING_COLUMNS",
    "DatasetFindings",
    "FamiliarGround",
    "Placement",
    "familiar_ground_for",
    "familiarity_columns",
    "find",
]

log = logging.getLogger(__name__)

FINDING_COLUMNS = (
    "familiarity",
    "less_familiar_than",
    "unfamiliar",
    "energy",
    "near_duplicate",
    "leaked",
)
"""Table columns each analysis adds: familiarity (0..1, higher = more familiar), the share of
validation images (%) more familiar, ``unfamiliar`` beyond the threshold, the logits' energy,
and whether the image has a near-duplicate among the validation or the training images."""


@dataclass(frozen=True)
class DatasetFindings:
    """What :func:`find` adds to an analysis.

    Attributes:
        columns: per-image columns (:data:`FINDING_COLUMNS`).
        familiarity: how familiarity was scored.
        pairs: near-duplicate pairs (:func:`cam_core.evaluation.duplicates.near_duplicates`).
        duplicates: the threshold and pair counts (manifest block).
        embedding: the 2-D map.
    """

    columns: dict[str, np.ndarray]
    familiarity: FamiliarityRecord
    pairs: pd.DataFrame
    duplicates: dict[str, Any]
    embedding: EmbeddingResult


def familiarity_columns(
    features: np.ndarray,
    logits: np.ndarray,
    reference: np.ndarray | None,
    reference_kind: str,
    note: str = "",
) -> tuple[dict[str, np.ndarray], FamiliarityRecord]:
    """Per image: familiarity, its percentile, ``unfamiliar`` and the logits' energy; and how
    they were scored.

    Args:
        features: ``(N, C)`` the analysed images' features.
        logits: ``(N, K)`` their logits.
        reference: ``(M, C)`` the training images' features, or ``None``.
        reference_kind: with :data:`REFERENCE_ANALYSED` the analysed images are their own
            reference (scored leave-one-out) and ``reference`` is ignored.
        note: why there is no reference, when there is none (said once in the log).
    """
    n = len(features)
    columns: dict[str, np.ndarray] = {"energy": energy_scores(logits)}
    own = reference_kind == REFERENCE_ANALYSED
    source = features if own else reference
    if source is not None and len(source) >= 2 and n:
        index, reference_scores = FamiliarityIndex.fit(source)
        scores = reference_scores if own else index.score(features)
        threshold = unfamiliar_threshold(scores)
        record = FamiliarityRecord(
            reference=reference_kind,
            n_reference=len(source),
            k=index.k,
            scale=index.scale,
            threshold=threshold,
        )
        columns["familiarity"] = scores
        columns["less_familiar_than"] = less_familiar_than(scores, scores)
        columns["unfamiliar"] = scores < threshold
    else:
        note = note or "fewer than two reference images"
        log.warning("no familiarity scores: %s", note)
        record = FamiliarityRecord(reference="", note=note)
        columns["familiarity"] = np.full(n, np.nan)
        columns["less_familiar_than"] = np.full(n, np.nan)
        columns["unfamiliar"] = np.zeros(n, dtype=bool)
    return columns, record


def find(
    analysed: ExplainedFiles,
    reference: ExplainedFiles | None,
    reference_kind: str,
    note: str = "",
    seed: int = 0,
) -> DatasetFindings:
    """Familiarity, near-duplicates and the 2-D map of the analysed images.

    Args:
        analysed: the analysed images' logits, features and signatures.
        reference: the training images' features and signatures, or ``None``.
        reference_kind: what ``reference`` is; with :data:`REFERENCE_ANALYSED` the analysed
            images are their own reference (scored leave-one-out) and ``reference`` is ignored.
        note: why there is no reference, when there is none (said once in the log).
        seed: seeds the embedding.
    """
    features = analysed.features
    n = len(features)
    own = reference_kind == REFERENCE_ANALYSED
    training = None if own or reference is None else reference
    columns, record = familiarity_columns(
        features,
        analysed.logits,
        training.features if training is not None else None,
        reference_kind,
        note,
    )
    pairs = near_duplicates(
        analysed.signatures, training.signatures if training is not None else None
    )
    columns["near_duplicate"] = np.isin(
        np.arange(n), pairs.loc[pairs["kind"] == KINDS[0], ["row", "other"]].to_numpy()
    )
    columns["leaked"] = np.isin(np.arange(n), pairs.loc[pairs["kind"] == KINDS[1], "row"])
    duplicates = {
        "max_distance": NEAR_DUPLICATE_DISTANCE,
        "metric": "cosine distance of 8x8 colour signatures at 5 crop scales",
        "validation_pairs": int((pairs["kind"] == KINDS[0]).sum()),
        "training_pairs": int((pairs["kind"] == KINDS[1]).sum()),
        "leaked_images": int(columns["leaked"].sum()),
        "checked_against_training": training is not None,
    }
    return DatasetFindings(
        columns=columns,
        familiarity=record,
        pairs=pairs,
        duplicates=duplicates,
        embedding=embed(features, seed),
    )


@dataclass(frozen=True)
class Placement:
    """Where new images (uploads, ``predict`` inputs) stand against an analysis.

    Attributes:
        familiarity: ``(n,)`` familiarity in 0..1 (higher = more familiar).
        less_familiar_than: ``(n,)`` percentage of validation images more familiar.
        unfamiliar: ``(n,)`` beyond the analysis's threshold.
        coords: ``(n, 2)`` on the analysis's 2-D map, or ``None`` without one.
    """

    familiarity: np.ndarray
    less_familiar_than: np.ndarray
    unfamiliar: np.ndarray
    coords: np.ndarray | None


class FamiliarGround:
    """An analysis's familiarity and map, rebuilt from its files for new images.

    Args:
        art: an analysis of format 3 whose familiarity was scored.

    Raises:
        ArtifactError: the analysis has no features or no familiarity reference (the message
            says why and how to get them).
    """

    def __init__(self, art: Artifacts) -> None:
        record = art.manifest.familiarity
        if record is None or art.array(FEATURES_FILE) is None:
            raise ArtifactError(
                f"{art.folder} has no features (made before artifact format 3); re-run "
                "`python -m cam_core analyze` to add familiarity and the embedding map"
            )
        if not record.available:
            raise ArtifactError(f"{art.folder} has no familiarity reference: {record.note}")
        features = np.asarray(art.arrays[FEATURES_FILE], dtype=np.float32)
        own = record.reference == REFERENCE_ANALYSED
        reference = art.array(REFERENCE_FEATURES_FILE)
        if not own and reference is None:
            raise ArtifactError(f"{art.folder} lacks its reference features; rerun the analysis")
        source = features if own else np.asarray(reference, dtype=np.float32)
        self.record = record
        self._index = FamiliarityIndex(source, record.k, record.scale)
        self._valid_scores = art.table["familiarity"].to_numpy(dtype=np.float64)
        coords = art.array(EMBEDDING_FILE)
        self._coords = None if coords is None else np.asarray(coords, dtype=np.float32)
        self._features = features

    def place(self, features: np.ndarray) -> Placement:
        """Familiarity and map position of new images' features ``(n, C)``."""
        scores = self._index.score(features)
        coords = None
        if self._coords is not None:
            coords = place(features, self._features, self._coords)
        return Placement(
            familiarity=scores,
            less_familiar_than=less_familiar_than(scores, self._valid_scores),
            unfamiliar=scores < self.record.threshold,
            coords=coords,
        )


def familiar_ground_for(
    model_dir: Path, model_sha256: str, explicit: Path | None = None
) -> tuple[FamiliarGround | None, str]:
    """The familiarity of a model's analysis, for placing new images.

    Args:
        model_dir: the model folder (an analysis beside it, ``../artifacts``, counts).
        model_sha256: the weights' hash; only an analysis of these weights counts.
        explicit: an artifact folder the user named (``--artifacts``); no search then.

    Returns:
        ``(ground, "")``, or ``(None, why there is none)`` in one line.

    Raises:
        ArtifactError: ``explicit`` cannot be read, analysed other weights, or has no
            familiarity.
    """
    # The hashes of the maps and arrays are not checked here (gigabytes for a big analysis,
    # on every predict); the table's and the Parquet files' are, and every shape is.
    if explicit is not None:
        art = read_artifacts(explicit, verify_maps=False)
        if art.manifest.model_sha256 != model_sha256:
            raise ArtifactError(
                f"{explicit} is an analysis of other weights than {model_dir}'s; pass the "
                "analysis of this model"
            )
        return FamiliarGround(art), ""
    candidates = [model_dir.parent / "artifacts", *find_artifact_folders(home())]
    for folder in analyses_of_model(model_sha256, candidates):
        try:
            return FamiliarGround(read_artifacts(folder, verify_maps=False)), ""
        except ArtifactError as exc:
            log.info("skipping %s: %s", folder, exc)
    return None, (
        f"no analysis of this model with familiarity was found beside it or under {home()}; "
        "run `analyze` or pass --artifacts DIR (predictions carry no familiarity)"
    )
