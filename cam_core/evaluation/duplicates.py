"""Near-duplicates: pairs of validation images, and validation images that are nearly a
training image (leakage: such an image says little about how the model generalises).

Measured on the demo, the model's pooled features cannot tell a copy from a different image
(see the README), so pairs are found on an image signature computed from the same model input
in the same pass: the normalised input at 8×8 in colour, for the whole image and for centred
crops of 95% to 80% of its side. A resized, re-encoded or slightly cropped copy matches one of
the original's crops almost exactly; distinct images do not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

__all__ = [
    "KINDS",
    "NEAR_DUPLICATE_DISTANCE",
    "SIGNATURE_SCALES",
    "image_signatures",
    "near_duplicates",
]

NEAR_DUPLICATE_DISTANCE = 0.012
"""Cosine distance of signatures under which two images are near-duplicates. On the demo
(species, seed 42) every planted copy (resized, JPEG at quality 40-70, crops of 2-8% per
side) lay at most 0.0054 from its original, and the closest two distinct images 0.021 apart."""
SIGNATURE_SCALES = (1.0, 0.95, 0.9, 0.85, 0.8)
"""Centred crops (share of the side) each image's signature covers; the first is the image."""
SIGNATURE_SIDE = 8
KINDS = ("validation", "training")
"""A pair within the validation images, or a validation image and a training image."""


def image_signatures(images: torch.Tensor) -> np.ndarray:
    """Signatures of model inputs: float16 ``(N, len(SIGNATURE_SCALES), 3 * 8 * 8)``, each row
    mean-centred and of unit length.

    Args:
        images: normalised model inputs ``(N, 3, S, S)``.
    """
    x = images.detach().float().cpu()
    side = x.shape[-1]
    rows = []
    for scale in SIGNATURE_SCALES:
        cut = round(side * (1.0 - scale) / 2)
        crop = x[..., cut : side - cut, cut : side - cut]
        small = F.adaptive_avg_pool2d(crop, SIGNATURE_SIDE).flatten(1)
        small = small - small.mean(dim=1, keepdim=True)
        rows.append(small / small.norm(dim=1, keepdim=True).clamp_min(1e-6))
    return torch.stack(rows, dim=1).numpy().astype(np.float16)


def _closest(
    query: np.ndarray, against: np.ndarray, max_distance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query row, against row, distance) closer than ``max_distance``, where the distance
    of two images is the smallest cosine distance between one's whole-image signature and any
    of the other's signatures (either way round)."""
    if len(query) == 0 or len(against) == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.zeros(0)
    q = np.asarray(query, np.float32)
    a = np.asarray(against, np.float32)
    n_scales, dim = a.shape[1], a.shape[2]
    every_crop = a.reshape(-1, dim).T  # (dim, M * scales)
    whole = a[:, 0].T  # (dim, M)
    found: dict[tuple[int, int], float] = {}
    step = max(16, 2**25 // (len(a) * n_scales))  # about 128 MB of similarities at a time
    for start in range(0, len(q), step):
        block = q[start : start + step]
        # Whole image against every crop of the others, and every crop against their whole.
        similarity = (block[:, 0] @ every_crop).reshape(len(block), len(a), n_scales).max(axis=2)
        crops = (block.reshape(-1, dim) @ whole).reshape(len(block), n_scales, len(a))
        similarity = np.maximum(similarity, crops.max(axis=1))
        rows, cols = np.nonzero(similarity > 1.0 - max_distance)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            found[(start + r, c)] = float(1.0 - similarity[r, c])
    if not found:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.zeros(0)
    pairs = np.array(list(found), dtype=int)
    return pairs[:, 0], pairs[:, 1], np.array(list(found.values()))


def near_duplicates(
    signatures: np.ndarray,
    reference: np.ndarray | None = None,
    max_distance: float = NEAR_DUPLICATE_DISTANCE,
) -> pd.DataFrame:
    """Near-duplicate pairs, closest first.

    Args:
        signatures: the validation images' signatures (:func:`image_signatures`).
        reference: the training images' signatures, or ``None`` (no leakage check).
        max_distance: distance under which a pair counts.

    Returns:
        Columns ``row`` (validation row), ``other`` (validation row, or reference row for
        training pairs), ``kind`` (:data:`KINDS`) and ``distance``; each validation pair
        once, ``row < other``.
    """
    rows, others, distances = _closest(signatures, signatures, max_distance)
    keep = rows < others
    within = {"row": rows[keep], "other": others[keep], "kind": KINDS[0]}
    frames = [pd.DataFrame({**within, "distance": distances[keep]})]
    if reference is not None:
        rows, others, distances = _closest(signatures, reference, max_distance)
        frames.append(
            pd.DataFrame({"row": rows, "other": others, "kind": KINDS[1], "distance": distances})
        )
    pairs = pd.concat(frames, ignore_index=True)
    pairs["distance"] = pairs["distance"].astype(float).clip(lower=0.0)
    return pairs.sort_values(["distance", "row", "other"], kind="stable").reset_index(drop=True)
