"""Where the model is on familiar ground: how close an image's features are to the images it
was trained on, and the energy of its logits as a second opinion.

Familiarity is the deep nearest-neighbour score of Sun et al. (ICML 2022, "Out-of-distribution
detection with deep nearest neighbors") on L2-normalised features, computed by cleanlab's
``OutOfDistribution`` (mean cosine distance to the ``k`` nearest reference images, mapped to
0..1, higher = more familiar). The threshold is a quantile of the validation images' scores,
so about 5% of images like the validation set are flagged by construction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_K",
    "REFERENCE_ANALYSED",
    "REFERENCE_TRAINING",
    "THRESHOLD_QUANTILE",
    "FamiliarityIndex",
    "FamiliarityRecord",
    "energy_scores",
    "less_familiar_than",
    "normalised",
    "unfamiliar_threshold",
]

log = logging.getLogger(__name__)

DEFAULT_K = 10
"""Neighbours averaged per image (cleanlab's default)."""
THRESHOLD_QUANTILE = 0.95
"""An image is unfamiliar when it is less familiar than this share of validation images."""


def normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32 ``(N, C)`` (a zero row stays zero)."""
    values = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values / np.maximum(norms, 1e-12)


class FamiliarityIndex:
    """Familiarity of images against a fixed reference set of feature vectors.

    Build it with :meth:`fit` at analysis time; later (predict, the dashboard) rebuild it from
    the stored reference features and :attr:`scale` without fitting again.

    Args:
        reference: ``(M, C)`` features of the reference images (at least 2).
        k: neighbours averaged (at most ``M - 1``).
        scale: the distance scale that :meth:`fit` learnt (cleanlab's scaling factor, the
            median of the reference images' mean neighbour distance).

    Raises:
        ValueError: fewer than two reference images, or a scale that is not positive.
    """

    def __init__(self, reference: np.ndarray, k: int, scale: float) -> None:
        from cleanlab.outlier import OutOfDistribution
        from sklearn.neighbors import NearestNeighbors

        if len(reference) < 2:
            raise ValueError(f"familiarity needs at least 2 reference images, got {len(reference)}")
        if not scale > 0:
            raise ValueError(f"the familiarity scale must be positive, got {scale}")
        self.k = int(min(k, len(reference) - 1))
        self.scale = float(scale)
        knn = NearestNeighbors(n_neighbors=self.k, metric="cosine", algorithm="brute")
        self._ood = OutOfDistribution(params={"knn": knn.fit(normalised(reference))})
        # cleanlab learns this scale in fit() and keeps it in its params; set from the stored
        # value, the index scores exactly as the fitted one without the leave-one-out pass.
        self._ood.params["scaling_factor"] = self.scale

    @classmethod
    def fit(cls, reference: np.ndarray, k: int = DEFAULT_K) -> tuple[FamiliarityIndex, np.ndarray]:
        """Fit on the reference set; returns the index and each reference image's
        familiarity against the others (leave-one-out), ``(M,)``.

        Raises:
            ValueError: fewer than two reference images.
        """
        from cleanlab.outlier import OutOfDistribution

        if len(reference) < 2:
            raise ValueError(f"familiarity needs at least 2 reference images, got {len(reference)}")
        k = int(min(k, len(reference) - 1))
        ood = OutOfDistribution(params={"k": k})
        scores = ood.fit_score(features=normalised(reference), verbose=False)
        scale = float(ood.params["scaling_factor"])
        return cls(reference, k, scale), np.asarray(scores, dtype=np.float64)

    def score(self, features: np.ndarray) -> np.ndarray:
        """``(N,)`` familiarity of new images in 0..1 (higher = more familiar).

        Args:
            features: ``(N, C)`` pooled features from the same model layer as the reference.
        """
        if len(features) == 0:
            return np.zeros(0)
        return np.asarray(self._ood.score(features=normalised(features)), dtype=np.float64)


def unfamiliar_threshold(valid_scores: np.ndarray, quantile: float = THRESHOLD_QUANTILE) -> float:
    """The familiarity below which an image counts as unfamiliar: less familiar than
    ``quantile`` of the validation images.

    The conformal (finite-sample) quantile: the ``⌊(n + 1)(1 − quantile)⌋``-th lowest
    validation score, so a new image drawn like the validation images is flagged with
    probability at most ``1 − quantile``; with fewer than ``1 / (1 − quantile) − 1``
    validation images nothing can be flagged (the threshold is ``-inf``).

    Raises:
        ValueError: no validation scores.
    """
    if len(valid_scores) == 0:
        raise ValueError("no validation images to set the familiarity threshold on")
    ordered = np.sort(np.asarray(valid_scores, dtype=np.float64))
    k = int(np.floor((len(ordered) + 1) * (1.0 - quantile) + 1e-9))
    return float(ordered[k - 1]) if k >= 1 else float("-inf")


def less_familiar_than(scores: np.ndarray, valid_scores: np.ndarray) -> np.ndarray:
    """For each score: the percentage of validation images that are more familiar (0..100).

    Args:
        scores: ``(N,)`` familiarity of the images to place.
        valid_scores: the validation images' familiarity.
    """
    ordered = np.sort(np.asarray(valid_scores, dtype=np.float64))
    if len(ordered) == 0:
        return np.full(len(scores), np.nan)
    more = len(ordered) - np.searchsorted(ordered, np.asarray(scores, np.float64), side="right")
    return 100.0 * more / len(ordered)


def energy_scores(logits: np.ndarray) -> np.ndarray:
    """Energy ``-logsumexp(logits)`` per image (Liu et al., NeurIPS 2020): higher means less
    like the training data, a second opinion beside the features' familiarity."""
    values = np.asarray(logits, dtype=np.float64)
    if len(values) == 0:
        return np.zeros(0)
    top = values.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(values - top).sum(axis=1)))


REFERENCE_TRAINING = "training images"
REFERENCE_ANALYSED = "analysed images (leave-one-out)"


@dataclass(frozen=True)
class FamiliarityRecord:
    """How an analysis scored familiarity (the manifest's ``familiarity`` block).

    Attributes:
        reference: :data:`REFERENCE_TRAINING`, :data:`REFERENCE_ANALYSED`, or ``""`` when no
            reference could be built (then ``note`` says why and nothing is scored).
        n_reference: reference images.
        k: neighbours averaged.
        scale: the distance scale of :class:`FamiliarityIndex`.
        quantile: share of validation images more familiar than the threshold.
        threshold: familiarity below which an image is unfamiliar.
        note: why there is no reference, when there is none.
    """

    reference: str
    n_reference: int = 0
    k: int = DEFAULT_K
    scale: float = 0.0
    quantile: float = THRESHOLD_QUANTILE
    threshold: float = 0.0
    note: str = ""

    @property
    def available(self) -> bool:
        """Familiarity was scored."""
        return bool(self.reference) and self.n_reference >= 2

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON entry."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FamiliarityRecord:
        """Read a manifest entry.

        Raises:
            ValueError: a value of the wrong type.
        """
        return cls(
            reference=str(raw.get("reference", "")),
            n_reference=int(raw.get("n_reference", 0)),
            k=int(raw.get("k", DEFAULT_K)),
            scale=float(raw.get("scale", 0.0)),
            quantile=float(raw.get("quantile", THRESHOLD_QUANTILE)),
            threshold=float(raw.get("threshold", 0.0)),
            note=str(raw.get("note", "")),
        )
