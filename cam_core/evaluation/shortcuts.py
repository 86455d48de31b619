"""Shortcut finder: where each class's maps keep looking, and whether that region causes the
prediction.

Candidates come from the stored maps of the whole analysis: per class, the mean of its
images' normalised maps (each image's positive map scaled to sum 1) and where single maps
peak. A candidate is a (class, square region) pair. Each is then tested by changing images
in the model's own preprocessing and watching the prediction:

- *removal*: the region of the class's images is filled with the image's mean colour; the
  class's mean probability and accuracy are compared with the same fill at a random place of
  the same size (the control), paired per image, with a bootstrap 95% interval;
- *transplant*: the region of the class's images is pasted onto images of the other classes;
  the share of predictions that flip to the class is compared with pasting the same region
  from images of other classes (the control), with Wilson 95% intervals.

With ground-truth masks, only images whose region is off the object take part (removal
targets and transplant sources), so a region that holds the animal's parts is not mistaken
for a shortcut; the verdict ``shortcut`` needs the region off the object on most of the
class's images **and** a causal effect beyond its interval. Without masks the region must be
consistent instead: single maps peak there far more often than by chance.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cam_core.errors import PreprocessingError
from cam_core.methods.budget import maps_for
from cam_core.progress import ConsoleProgress, ProgressFn

__all__ = [
    "Box",
    "CausalResult",
    "ClassMapMeans",
    "ShortcutConfig",
    "ShortcutFinding",
    "ShortcutSearch",
    "Verdict",
    "check_preprocessing",
    "find_shortcuts",
    "flips_exceed",
    "wilson_interval",
]

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` as fractions of the image side (0 = left/top, 1 = right/bottom)."""

OFF_OBJECT_PIXELS = 0.02
"""An image's region is off the object when at most this share of its pixels is on the mask."""


class Verdict(enum.Enum):
    """What a candidate turned out to be (display words live in ``present``)."""

    SHORTCUT = "shortcut"
    OBJECT = "on the object"
    NO_EFFECT = "no causal effect"
    COMMON = "where every class looks"
    TOO_FEW = "too few images"


@dataclass(frozen=True)
class ShortcutConfig:
    """How to search.

    Attributes:
        sample_n: most images per causal test and arm (a seeded sample).
        region: side of a candidate region as a fraction of the image side (at least one
            map cell).
        per_class: candidate regions per class (peaks of its mean map, not overlapping).
        max_candidates: most candidates tested, those whose class-mean map concentrates most
            in them first (bounds the time and the manifest for models of many classes).
        min_images: a class needs this many validation images (with the region off the
            object, where masks exist) for an interval; fewer: ``too few images``.
        min_log_odds: smallest mean drop of the class's log-odds (above its control, in nats:
            1 cuts the odds by e) that makes a removal an effect.
        min_effect: smallest flip rate (above its control) that makes a transplant an
            effect.
        off_object_share: with masks, the share of the class's images whose region is off
            the object for the region to count as off the object.
        consistency: without masks, a region counts as a place the class keeps looking when
            this many times its area's share of single-map peaks fall in it ...
        specificity: ... **and** the class's maps put this many times the other classes' mass
            there (a centred object draws every class's maps alike; a class's mark does not).
        bootstrap: resamples of the removal interval.
        batch_size: images per forward pass.
        seed: seeds the samples, pairings, control places and bootstrap.
    """

    sample_n: int = 128
    region: float = 1 / 6
    per_class: int = 2
    max_candidates: int = 40
    min_images: int = 20
    min_log_odds: float = 1.0
    min_effect: float = 0.05
    off_object_share: float = 0.5
    consistency: float = 2.0
    specificity: float = 3.0
    bootstrap: int = 2000
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.region <= 0.5:
            raise ValueError(f"region must be in (0, 0.5], got {self.region}")
        if self.sample_n < 2 or self.min_images < 2 or min(self.per_class, self.max_candidates) < 1:
            raise ValueError(
                "sample_n and min_images must be at least 2, per_class and max_candidates at "
                "least 1"
            )


@dataclass(frozen=True)
class CausalResult:
    """One causal test of a region.

    Attributes:
        effect: removal: drop of the class's mean probability; transplant: share of
            predictions flipped to the class.
        interval: 95% interval of ``effect`` (removal: bootstrap; transplant: Wilson).
        control: the same figure for the control (a random place, or the region pasted from
            other classes' images).
        control_interval: its 95% interval.
        n: images tested.
        accuracy_drop: removal only: drop of the class's accuracy (points of 1).
        log_odds_drop: removal only: mean drop of the class's log-odds (nats), which the
            verdict reads; ``log_odds_control`` the control's.
        significant: the effect exceeds the control by at least the configured minimum and
            beyond chance (removal: the class's log-odds drop beyond the control's, whose
            paired bootstrap interval is above 0; transplant: the Wilson intervals do not
            overlap).
    """

    effect: float
    interval: tuple[float, float]
    control: float
    control_interval: tuple[float, float]
    n: int
    significant: bool
    accuracy_drop: float | None = None
    log_odds_drop: float | None = None
    log_odds_control: float | None = None


@dataclass(frozen=True)
class ShortcutFinding:
    """One candidate and what its tests found.

    Attributes:
        class_name: the class whose maps concentrate on the region.
        box: the region (:data:`Box`).
        concentration: the class-mean map's mass in the region over the region's area share
            (1: no more than anywhere else).
        specificity: that mass over the other classes' (their own maps on their images) in
            the same region (1: every class looks there alike, as at a centred object).
        peak_share: share of the class's images whose own map peaks in the region.
        off_object: with masks, share of the class's images whose region is off the object;
            ``None`` without masks.
        mass_off_object: with masks, mean share of the class's map mass off the object.
        removal / transplant: the causal tests (``None`` when there were too few images).
        verdict: what it is.
        rows: table rows of the images whose map of the class peaks in the region (the
            affected images, at most 1,000).
        mean_map: the class-mean normalised map ``(h, w)``.
    """

    class_name: str
    box: Box
    concentration: float
    specificity: float
    peak_share: float
    off_object: float | None
    mass_off_object: float | None
    removal: CausalResult | None
    transplant: CausalResult | None
    verdict: Verdict
    rows: tuple[int, ...] = ()
    mean_map: tuple[tuple[float, ...], ...] = field(default=(), repr=False)

    @property
    def strength(self) -> float:
        """The larger causal effect beyond its control (0 without tests): the rank key."""
        effects = [
            result.effect - result.control
            for result in (self.removal, self.transplant)
            if result is not None
        ]
        return max(effects, default=0.0)

    def to_json(self) -> dict[str, Any]:
        """The manifest entry (the verdict as its value; tuples are written as JSON lists)."""
        raw = asdict(self)
        raw["verdict"] = self.verdict.value
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ShortcutFinding:
        """Read a manifest entry back.

        Raises:
            ValueError, KeyError, TypeError: a damaged entry.
        """

        def causal(value: Any) -> CausalResult | None:
            if value is None:
                return None
            return CausalResult(
                **{
                    **value,
                    "interval": tuple(value["interval"]),
                    "control_interval": tuple(value["control_interval"]),
                }
            )

        return cls(
            class_name=str(raw["class_name"]),
            box=(
                float(raw["box"][0]),
                float(raw["box"][1]),
                float(raw["box"][2]),
                float(raw["box"][3]),
            ),
            concentration=float(raw["concentration"]),
            specificity=float(raw["specificity"]),
            peak_share=float(raw["peak_share"]),
            off_object=None if raw["off_object"] is None else float(raw["off_object"]),
            mass_off_object=None
            if raw["mass_off_object"] is None
            else float(raw["mass_off_object"]),
            removal=causal(raw["removal"]),
            transplant=causal(raw["transplant"]),
            verdict=Verdict(raw["verdict"]),
            rows=tuple(int(r) for r in raw.get("rows", ())),
            mean_map=tuple(tuple(float(v) for v in row) for row in raw.get("mean_map", ())),
        )


@dataclass(frozen=True)
class ShortcutSearch:
    """What an analysis found (the manifest's ``shortcuts`` block).

    Attributes:
        method: whose maps gave the candidates.
        findings: ranked, shortcuts first.
        settings: the :class:`ShortcutConfig` used.
        masks: the search had ground-truth masks.
        seconds: wall time of the search.
        skipped: why there was no search (e.g. preprocessing that cannot be reproduced);
            empty when it ran.
    """

    method: str = ""
    findings: tuple[ShortcutFinding, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    masks: bool = False
    seconds: float = 0.0
    skipped: str = ""

    @property
    def shortcuts(self) -> tuple[ShortcutFinding, ...]:
        """The findings whose verdict is ``shortcut``."""
        return tuple(f for f in self.findings if f.verdict is Verdict.SHORTCUT)

    def to_json(self) -> dict[str, Any]:
        """The manifest block."""
        return {
            "method": self.method,
            "findings": [finding.to_json() for finding in self.findings],
            "settings": dict(self.settings),
            "masks": self.masks,
            "seconds": self.seconds,
            "skipped": self.skipped,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ShortcutSearch:
        """Read the manifest block back.

        Raises:
            ValueError, KeyError, TypeError: a damaged block.
        """
        return cls(
            method=str(raw.get("method", "")),
            findings=tuple(ShortcutFinding.from_json(f) for f in raw.get("findings", [])),
            settings=dict(raw.get("settings", {})),
            masks=bool(raw.get("masks")),
            seconds=float(raw.get("seconds", 0.0)),
            skipped=str(raw.get("skipped", "")),
        )


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (``(0, 1)`` for ``n = 0``)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _log_odds(log_probs: np.ndarray, k: int) -> np.ndarray:
    """``log p_k - log(1 - p_k)`` per row, from log-probabilities ``(n, K)`` without
    rounding a confident ``p_k`` to 1."""
    others = np.delete(log_probs, k, axis=1)
    return log_probs[:, k] - np.logaddexp.reduce(others, axis=1)


def flips_exceed(flips: int, control_flips: int, n: int, min_effect: float) -> bool:
    """A transplant moved predictions: its flip rate beats the control's by ``min_effect`` and
    the two Wilson 95% intervals do not overlap."""
    if n <= 0:
        return False
    low = wilson_interval(flips, n)[0]
    return low > wilson_interval(control_flips, n)[1] and (flips - control_flips) / n >= min_effect


def _bootstrap_interval(
    values: np.ndarray, resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values``."""
    if len(values) == 0:
        return (0.0, 0.0)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return (float(low), float(high))


def check_preprocessing(mean: Sequence[float], std: Sequence[float]) -> None:
    """Refuse causal tests when the model's normalisation is unknown.

    Raises:
        PreprocessingError: ``mean``/``std`` are not three channels or a std is not positive.
    """
    if len(mean) != 3 or len(std) != 3 or any(not s > 0 for s in std):
        raise PreprocessingError(
            f"the model's preprocessing cannot be reproduced (normalisation mean {list(mean)}, "
            f"std {list(std)}); give the model card three channel means and positive stds"
        )


class ClassMapMeans:
    """Streaming per-class statistics of one method's maps (``update`` per chunk, then read).

    For each class k, over the images labelled k: the mean of their normalised class-k maps,
    where each single map peaks, and (with masks) its mass off the object.
    """

    def __init__(self, n_classes: int, shape: tuple[int, int]) -> None:
        self.sums = np.zeros((n_classes, *shape), np.float64)
        self.counts = np.zeros(n_classes, np.int64)
        self.peaks: list[list[int]] = [[] for _ in range(n_classes)]
        self.off_mass: list[list[float]] = [[] for _ in range(n_classes)]

    def update(
        self, label_maps: np.ndarray, labels: np.ndarray, masks: np.ndarray | None = None
    ) -> None:
        """Add a chunk.

        Args:
            label_maps: ``(n, h, w)`` each image's map of its true class.
            labels: ``(n,)`` true class index.
            masks: ``(n, h, w)`` share of each map cell on the object, or ``None``.
        """
        k_maps = np.asarray(label_maps, dtype=np.float64)
        positive = np.clip(k_maps, 0.0, None)
        totals = positive.reshape(len(labels), -1).sum(axis=1)
        for i, k in enumerate(labels):
            if totals[i] <= 0:
                continue
            share = positive[i] / totals[i]
            self.sums[k] += share
            self.counts[k] += 1
            self.peaks[k].append(int(np.argmax(k_maps[i])))
            if masks is not None:
                self.off_mass[k].append(float((share * (1.0 - masks[i])).sum()))

    def mean_map(self, k: int) -> np.ndarray:
        """The class-mean normalised map ``(h, w)`` (sums to 1; zeros without images)."""
        return self.sums[k] / max(1, int(self.counts[k]))


def _regions(mean_map: np.ndarray, side: float, count: int) -> list[Box]:
    """Up to ``count`` non-overlapping square regions around the highest cells of
    ``mean_map`` ``(h, w)``."""
    h, w = mean_map.shape
    # at least a cell wide, so a region always covers the part of the image its cell holds
    half = max(side, 1.0 / min(h, w)) / 2
    boxes: list[Box] = []
    for flat in np.argsort(mean_map, axis=None)[::-1]:
        if len(boxes) == count or mean_map.flat[flat] <= 0:
            break
        i, j = divmod(int(flat), w)
        cx, cy = j / w, i / h  # a cell sits on its receptive field's centre (methods.placement)
        cx, cy = min(max(cx, half), 1 - half), min(max(cy, half), 1 - half)
        # A region within a cell of the border reaches it (_snap): an edge cell holds to the
        # border, and near the border zero padding shifts a network's peak inwards (the demo's
        # corner mark peaks one cell above it on some seeds); captions and logos sit there.
        x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
        box = (_snap(x0, 1 / w), _snap(y0, 1 / h), _snap(x1, 1 / w), _snap(y1, 1 / h))
        if all(_overlap(box, other) == 0 for other in boxes):
            boxes.append(box)
    return boxes


def _concentration(mean_map: np.ndarray, box: Box) -> float:
    """The class-mean map's mass in ``box`` over the box's share of the image."""
    return float((mean_map * _cells(box, *mean_map.shape)).sum()) / max(_area(box), 1e-9)


def _area(box: Box) -> float:
    """The box's share of the image."""
    return (box[2] - box[0]) * (box[3] - box[1])


def _snap(value: float, cell: float) -> float:
    """A box edge within one cell of the image border, moved onto it."""
    if value <= cell + 1e-9:
        return 0.0
    return 1.0 if value >= 1.0 - cell - 1e-9 else value


def _overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _edges(cells: int) -> np.ndarray:
    """Edges of the image parts nearest to each cell, as fractions of the side: cell ``i``
    sits on ``i / cells`` (:mod:`cam_core.methods.placement`), the last one holds to the edge."""
    return np.concatenate([[0.0], (np.arange(cells - 1) + 0.5) / cells, [1.0]])


def _cells(box: Box, h: int, w: int) -> np.ndarray:
    """``(h, w)`` share of each map cell's part of the image inside ``box``."""
    xs, ys = _edges(w), _edges(h)
    across = np.clip(np.minimum(xs[1:], box[2]) - np.maximum(xs[:-1], box[0]), 0, None)
    down = np.clip(np.minimum(ys[1:], box[3]) - np.maximum(ys[:-1], box[1]), 0, None)
    return np.outer(down / np.diff(ys), across / np.diff(xs))


def _taken_for(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of ``scores`` ``(n, K)`` (probabilities or their logarithms) predicted as ``k``."""
    return np.asarray(scores.argmax(axis=1) == k)


def _pixels(box: Box, size: int) -> tuple[int, int, int, int]:
    x0, y0 = round(box[0] * size), round(box[1] * size)
    return (x0, y0, max(x0 + 1, round(box[2] * size)), max(y0 + 1, round(box[3] * size)))


def _on_object(object_cells: np.ndarray, box: Box) -> np.ndarray:
    """Share of the region on the object, per image of ``object_cells`` ``(n, h, w)`` (each
    cell's share on the object, weighted by how much of the cell the region covers)."""
    inside = _cells(box, *object_cells.shape[1:])
    covered = np.asarray(object_cells, dtype=np.float64) * inside
    return covered.reshape(len(object_cells), -1).sum(axis=1) / max(float(inside.sum()), 1e-9)


ImagesFor = Callable[[np.ndarray], torch.Tensor]
"""Table rows → their normalised model inputs ``(n, 3, S, S)``."""
MasksFor = Callable[[Sequence[int]], np.ndarray]
"""Table rows → their bool ground-truth masks ``(n, S, S)`` at the input size."""


class _Tester:
    """The causal tests, sharing the model, the images and the seeded generator."""

    def __init__(
        self,
        net: nn.Module,
        images_for: ImagesFor,
        object_cells: np.ndarray | None,
        probs: np.ndarray,
        true_idx: np.ndarray,
        cfg: ShortcutConfig,
    ) -> None:
        self.net, self.images_for, self.object_cells = net, images_for, object_cells
        self.probs, self.true_idx, self.cfg = probs, true_idx, cfg
        self.rng = np.random.default_rng(cfg.seed)

    def _log_probs(self, x: torch.Tensor) -> np.ndarray:
        """Log-probabilities ``(n, K)`` of the model on ``x``, in batches."""
        device = next(self.net.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), self.cfg.batch_size):
                logits = self.net(x[start : start + self.cfg.batch_size].to(device))
                out.append(torch.log_softmax(logits.double(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.probs.shape[1]))

    def _predict(self, x: torch.Tensor) -> np.ndarray:
        return np.exp(self._log_probs(x))

    def _sample(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) <= self.cfg.sample_n:
            return rows
        return np.sort(self.rng.choice(rows, self.cfg.sample_n, replace=False))

    def off_object_rows(self, rows: np.ndarray, box: Box) -> np.ndarray:
        if self.object_cells is None or not len(rows):
            return rows
        return rows[_on_object(self.object_cells[rows], box) <= OFF_OBJECT_PIXELS]

    def _control_box(self, box: Box, row: int) -> Box:
        """A random place of the region's size, apart from it (and off the object)."""
        side_x, side_y = box[2] - box[0], box[3] - box[1]
        candidate = box
        for _ in range(20):
            x0, y0 = self.rng.uniform(0, 1 - side_x), self.rng.uniform(0, 1 - side_y)
            candidate = (x0, y0, x0 + side_x, y0 + side_y)
            if _overlap(candidate, box) > 0:
                continue
            if self.object_cells is None:
                break
            if _on_object(self.object_cells[[row]], candidate)[0] <= OFF_OBJECT_PIXELS:
                break
        return candidate

    def removal(self, k: int, box: Box, rows: np.ndarray) -> CausalResult:
        targets = self._sample(rows)
        x = self.images_for(targets)
        size = x.shape[-1]
        fill = x.mean(dim=(2, 3), keepdim=True)
        removed, control = x.clone(), x.clone()
        x0, y0, x1, y1 = _pixels(box, size)
        removed[:, :, y0:y1, x0:x1] = fill
        for i, row in enumerate(targets):
            c0, d0, c1, d1 = _pixels(self._control_box(box, int(row)), size)
            control[i, :, d0:d1, c0:c1] = fill[i]
        original, after, after_control = (
            self._log_probs(x),
            self._log_probs(removed),
            self._log_probs(control),
        )
        drop = np.exp(original[:, k]) - np.exp(after[:, k])
        control_drop = np.exp(original[:, k]) - np.exp(after_control[:, k])
        # The verdict reads log-odds: a confident model's probability hardly moves (0.999 to
        # 0.99) even when the region carried much of its evidence.
        odds = _log_odds(original, k) - _log_odds(after, k)
        control_odds = _log_odds(original, k) - _log_odds(after_control, k)
        beyond = odds - control_odds
        # Paired per image: the drop beyond the control must stay above 0 across resamples.
        beyond_low = _bootstrap_interval(beyond, self.cfg.bootstrap, self.rng)[0]
        correct, still = _taken_for(original, k), _taken_for(after, k)
        return CausalResult(
            effect=float(drop.mean()),
            interval=_bootstrap_interval(drop, self.cfg.bootstrap, self.rng),
            control=float(control_drop.mean()),
            control_interval=_bootstrap_interval(control_drop, self.cfg.bootstrap, self.rng),
            n=len(targets),
            significant=beyond_low > 0 and float(beyond.mean()) >= self.cfg.min_log_odds,
            accuracy_drop=float(correct.mean() - still.mean()),
            log_odds_drop=float(odds.mean()),
            log_odds_control=float(control_odds.mean()),
        )

    def transplant(self, k: int, box: Box, sources: np.ndarray) -> CausalResult:
        others = np.flatnonzero((self.true_idx != k) & ~_taken_for(self.probs, k))
        targets = self._sample(others)
        donors = self.off_object_rows(np.flatnonzero(self.true_idx != k), box)
        if len(targets) == 0 or len(donors) == 0:
            return CausalResult(0.0, (0.0, 1.0), 0.0, (0.0, 1.0), 0, False)
        x = self.images_for(targets)
        x0, y0, x1, y1 = _pixels(box, x.shape[-1])
        from_class = self.rng.choice(sources, len(targets))
        from_others = self.rng.choice(donors, len(targets))
        pasted, control = x.clone(), x.clone()
        pasted[:, :, y0:y1, x0:x1] = self.images_for(from_class)[:, :, y0:y1, x0:x1]
        control[:, :, y0:y1, x0:x1] = self.images_for(from_others)[:, :, y0:y1, x0:x1]
        flips = int(_taken_for(self._predict(pasted), k).sum())
        control_flips = int(_taken_for(self._predict(control), k).sum())
        n = len(targets)
        return CausalResult(
            effect=flips / n,
            interval=wilson_interval(flips, n),
            control=control_flips / n,
            control_interval=wilson_interval(control_flips, n),
            n=n,
            significant=flips_exceed(flips, control_flips, n, self.cfg.min_effect),
        )


def _cell_masks(masks: np.ndarray, h: int, w: int) -> np.ndarray:
    """``(n, h, w)`` share of each map cell on the object, from masks ``(n, S, S)``."""
    n, size = len(masks), masks.shape[-1]
    ys = np.round(_edges(h) * size).astype(int)
    xs = np.round(_edges(w) * size).astype(int)
    out = np.zeros((n, h, w), np.float64)
    for i in range(h):
        for j in range(w):
            cell = masks[:, ys[i] : max(ys[i + 1], ys[i] + 1), xs[j] : max(xs[j + 1], xs[j] + 1)]
            out[:, i, j] = cell.reshape(n, -1).mean(axis=1)
    return out


def find_shortcuts(
    net: nn.Module,
    maps: np.ndarray,
    slots: np.ndarray | None,
    true_idx: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    images_for: ImagesFor,
    masks: MasksFor | None = None,
    cfg: ShortcutConfig = ShortcutConfig(),
    progress: ProgressFn | None = None,
) -> list[ShortcutFinding]:
    """Candidates from the maps, each tested causally; ranked, shortcuts first.

    Args:
        net: the classifier (eval mode); its forward pass gives logits.
        maps: one method's maps ``(N, S, h, w)`` (may be memory-mapped).
        slots: ``(N, S)`` the class of each slot where the maps hold a class budget, else
            ``None`` (slot k is class k).
        true_idx: ``(N,)`` true class index.
        probs: ``(N, K)`` the model's probabilities of the unchanged images.
        classes: class names in output order.
        images_for: rows → normalised inputs ``(n, 3, S, S)`` in the model's preprocessing.
        masks: rows → their bool ground-truth masks ``(n, S, S)`` at the input size, or
            ``None``; each is read once and kept at map resolution (a share per cell).
        cfg: sample sizes, region size, thresholds, seed.
        progress: optional callback (message, fraction done).

    Returns:
        One finding per candidate: verdict ``shortcut`` first (those both tests confirm
        before those one test does), then by causal strength.
    """
    n, h, w = len(maps), maps.shape[2], maps.shape[3]
    n_classes = len(classes)
    means = ClassMapMeans(n_classes, (h, w))
    object_cells = None if masks is None else np.zeros((n, h, w), np.float16)
    for start in range(0, n, 1024):
        stop = min(n, start + 1024)
        cells = None
        if masks is not None and object_cells is not None:
            cells = _cell_masks(masks(range(start, stop)), h, w)
            object_cells[start:stop] = cells
        rows = np.arange(start, stop)
        means.update(maps_for(maps, slots, rows, true_idx[rows]), true_idx[rows], cells)
    tester = _Tester(net, images_for, object_cells, probs, true_idx, cfg)
    plan = [
        (k, box)
        for k in range(n_classes)
        for box in _regions(means.mean_map(k), cfg.region, cfg.per_class)
    ]
    if len(plan) > cfg.max_candidates:
        plan = sorted(plan, key=lambda c: -_concentration(means.mean_map(c[0]), c[1]))
        log.info("testing the %d most concentrated of %d candidates", cfg.max_candidates, len(plan))
        plan = plan[: cfg.max_candidates]
    findings = []
    peak_cells: dict[int, np.ndarray] = {}
    with ConsoleProgress("shortcut tests", len(plan), "regions") as bar:
        for step, (k, box) in enumerate(plan):
            if progress is not None:
                progress(
                    f"testing {classes[k]}'s region {step + 1} of {len(plan)}", step / len(plan)
                )
            if k not in peak_cells:  # each class's maps are read once, for both its regions
                peak_cells[k] = _peak_cells(maps, slots, k)
            findings.append(
                _assess(k, box, peak_cells[k], means, tester, classes, masks is not None)
            )
            bar.update()
    if progress is not None:
        progress("shortcut search done", 1.0)
    return sorted(findings, key=_rank)


def _rank(finding: ShortcutFinding) -> tuple[bool, int, float]:
    """Shortcuts first; among them, those both tests confirm; then by causal strength."""
    confirmed = sum(
        1 for test in (finding.removal, finding.transplant) if test is not None and test.significant
    )
    return (finding.verdict is not Verdict.SHORTCUT, -confirmed, -finding.strength)


def _assess(
    k: int,
    box: Box,
    peaks_k: np.ndarray,
    means: ClassMapMeans,
    tester: _Tester,
    classes: Sequence[str],
    has_masks: bool,
) -> ShortcutFinding:
    cfg = tester.cfg
    mean_map = means.mean_map(k)
    h, w = mean_map.shape
    inside = _cells(box, h, w)
    # a candidate comes from a class-mean map with mass, so the class has peaks
    peak_share = float(inside.flat[means.peaks[k]].mean())
    class_rows = np.flatnonzero(tester.true_idx == k)
    off_rows = tester.off_object_rows(class_rows, box)
    off_object = len(off_rows) / len(class_rows) if has_masks and len(class_rows) else None
    mass_off = float(np.mean(means.off_mass[k])) if means.off_mass[k] else None
    mass = float((mean_map * inside).sum())
    others = [
        float((means.mean_map(j) * inside).sum())
        for j in range(len(classes))
        if j != k and means.counts[j]
    ]
    specificity = mass / max(float(np.mean(others)), 1e-9) if others else 1.0
    located = (
        off_object is not None and off_object >= cfg.off_object_share
        if has_masks
        else peak_share >= cfg.consistency * _area(box) and specificity >= cfg.specificity
    )
    # A region off the object is tested where it is off the object, so the animal's own parts
    # cannot make it look causal; a region on the object is tested on all the class's images.
    tested = off_rows if located else class_rows
    removal = transplant = None
    if len(tested) < cfg.min_images:
        verdict = Verdict.TOO_FEW
    else:
        removal = tester.removal(k, box, tested)
        transplant = tester.transplant(k, box, tested)
        if not (removal.significant or transplant.significant):
            verdict = Verdict.NO_EFFECT
        elif located:
            verdict = Verdict.SHORTCUT
        else:
            verdict = Verdict.OBJECT if has_masks else Verdict.COMMON
    return ShortcutFinding(
        class_name=classes[k],
        box=tuple(round(float(v), 4) for v in box),  # type: ignore[arg-type]
        concentration=_concentration(mean_map, box),
        specificity=specificity,
        peak_share=peak_share,
        off_object=off_object,
        mass_off_object=mass_off,
        removal=removal,
        transplant=transplant,
        verdict=verdict,
        rows=_affected(peaks_k, inside),
        mean_map=tuple(tuple(round(float(v), 6) for v in row) for row in mean_map),
    )


def _peak_cells(maps: np.ndarray, slots: np.ndarray | None, k: int) -> np.ndarray:
    """``(N,)`` flat index of the cell where each image's class-k map peaks (read in chunks);
    ``-1`` where the class budget holds no class-k map of the image."""
    parts = []
    for start in range(0, len(maps), 4096):
        rows = np.arange(start, min(len(maps), start + 4096))
        chunk = maps_for(maps, slots, rows, np.full(len(rows), k)).reshape(len(rows), -1)
        missing = np.isnan(chunk).all(axis=1)
        peaks = np.nan_to_num(chunk, nan=-np.inf).argmax(axis=1)
        parts.append(np.where(missing, -1, peaks))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=int)


def _affected(peaks: np.ndarray, inside: np.ndarray, limit: int = 1000) -> tuple[int, ...]:
    """Rows whose class map peaks in the region (any label), at most ``limit``."""
    held = peaks >= 0
    rows = np.flatnonzero(held & (inside.reshape(-1)[np.where(held, peaks, 0)] > 0.5))
    return tuple(int(r) for r in rows[:limit])
