"""Which classes an image gets maps of: the class budget, and reading maps stored under one.

Exact CAM gives every class's map from the forward pass, for free. Every other method costs at
least one pass per class, so for a model of many classes it computes maps for a *budget* of
classes per image: the true class (where known), the prediction and the next most probable
classes, up to ``K``. Such maps are stored as ``(N, S, h, w)`` with the class index of each
slot ``(N, S)``; maps of every class are stored as ``(N, K, h, w)`` with no slot file.
Readers ask this module for the map of a class, which is missing (all NaN) where the budget
left it out, so no reader indexes slots by hand.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_CLASSES_PER_IMAGE",
    "budget_classes",
    "every_class",
    "fits",
    "held_classes",
    "maps_for",
    "parse_budget",
    "slots_of",
]

DEFAULT_CLASSES_PER_IMAGE = 3
"""The true class, the prediction and the next most probable (two when they coincide)."""


def parse_budget(text: str) -> int | None:
    """``"3"`` → 3, ``"all"`` → ``None`` (every class).

    Raises:
        ValueError: neither ``all`` nor a whole number of at least 1.
    """
    cleaned = text.strip().lower()
    if cleaned == "all":
        return None
    try:
        value = int(cleaned)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"classes per image must be 'all' or a whole number >= 1, not {text!r}")
    return value


def budget_classes(
    logits: np.ndarray, truth: np.ndarray | None, per_image: int | None
) -> np.ndarray | None:
    """The classes each image gets maps of.

    Args:
        logits: ``(N, K)`` the model's outputs.
        truth: ``(N,)`` true class index per image (``-1`` where unknown), or ``None``.
        per_image: classes per image; ``None`` for every class.

    Returns:
        int64 ``(N, S)``: per image the true class first, then the classes in order of
        probability, without repeats; ``None`` when the budget covers every class (then slot
        ``k`` is class ``k``).
    """
    n, n_classes = logits.shape
    if per_image is None or per_image >= n_classes:
        return None
    order = np.argsort(-np.asarray(logits, dtype=np.float64), axis=1, kind="stable")
    chosen = np.empty((n, per_image), dtype=np.int64)
    for row in range(n):
        known = truth is not None and int(truth[row]) >= 0
        picks = [int(truth[row])] if known and truth is not None else []
        for k in order[row]:
            if len(picks) == per_image:
                break
            if int(k) not in picks:
                picks.append(int(k))
        chosen[row] = picks
    return chosen


def slots_of(classes: np.ndarray | None, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(n,)`` the slot holding class ``targets[i]`` of image ``rows[i]``; ``-1`` where the
    budget has no map of it.

    Args:
        classes: ``(N, S)`` slot classes, or ``None`` when every class is stored.
        rows: ``(n,)`` image rows.
        targets: ``(n,)`` class indices.
    """
    rows = np.asarray(rows, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if classes is None:
        return targets
    match = np.asarray(classes[rows]) == targets[:, None]
    return np.where(match.any(axis=1), match.argmax(axis=1), -1)


def maps_for(
    values: np.ndarray, classes: np.ndarray | None, rows: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """The map of class ``targets[i]`` of image ``rows[i]``, float32 ``(n, h, w)``; all NaN
    where the budget has no map of that class.

    Args:
        values: ``(N, S, h, w)`` stored maps (may be memory-mapped).
        classes: ``(N, S)`` their slot classes, or ``None`` for maps of every class.
        rows: ``(n,)`` image rows.
        targets: ``(n,)`` class indices.
    """
    rows = np.asarray(rows, dtype=np.int64)
    slots = slots_of(classes, rows, targets)
    out = np.full((len(rows), *values.shape[2:]), np.nan, dtype=np.float32)
    held = slots >= 0
    if held.any():
        out[held] = values[rows[held], slots[held]]
    return out


def every_class(values: np.ndarray, classes: np.ndarray | None, n_classes: int) -> np.ndarray:
    """One image's maps laid out by class, float32 ``(K, h, w)``; all NaN for a class the
    budget left out.

    Args:
        values: ``(S, h, w)`` the image's stored maps.
        classes: ``(S,)`` their classes, or ``None`` when slot ``k`` is class ``k``.
        n_classes: ``K``.
    """
    values = np.asarray(values, dtype=np.float32)
    if classes is None:
        return values
    out = np.full((n_classes, *values.shape[1:]), np.nan, dtype=np.float32)
    out[np.asarray(classes, dtype=np.int64)] = values
    return out


def fits(classes: np.ndarray, maps_shape: tuple[int, ...], n_classes: int) -> bool:
    """Whether slot classes ``(N, S)`` fit maps of ``maps_shape`` ``(N, S, h, w)`` of a model
    of ``n_classes`` classes (every index a class)."""
    if tuple(classes.shape) != tuple(maps_shape[:2]):
        return False
    return not len(classes) or bool(classes.min() >= 0 and classes.max() < n_classes)


def held_classes(classes: np.ndarray | None, n_slots: int, n_classes: int) -> np.ndarray | None:
    """The slot classes of maps with ``n_slots`` slots: ``classes`` when they hold a budget,
    ``None`` when they hold every class (exact CAM's maps, or no budget)."""
    return None if classes is None or n_slots == n_classes else classes
