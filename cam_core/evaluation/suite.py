"""Every quality figure of an analysis in one call, and what they mean for each method.

Localisation runs on every image with a mask; deletion/insertion on a seeded sample; the
sanity check on the first part of that sample. Random and centred-Gaussian maps go through
the same metrics, so a method's numbers can be read against maps that know nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from cam_core.evaluation.baselines import BASELINES, baseline_maps
from cam_core.evaluation.faithfulness import (
    DEFAULT_STEPS,
    perturbation_passes,
    shared_perturbation_curves,
)
from cam_core.evaluation.localisation import energy_in_mask, map_peaks, pointing_hits
from cam_core.evaluation.sanity import SANITY_THRESHOLD, randomization_spearman
from cam_core.methods import get_method
from cam_core.methods.budget import maps_for
from cam_core.methods.tokens import placement_of
from cam_core.progress import ConsoleProgress, Stopwatch

__all__ = [
    "METRICS",
    "Assessment",
    "QualityConfig",
    "assess",
    "finite_mean",
    "quality_by_class",
    "quality_table",
    "scores_of",
    "verdicts",
]

METRICS = ("pointing_game", "energy_in_mask", "deletion_auc", "insertion_auc")
_COLUMN = {
    "pointing_game": "pointing_hit",
    "energy_in_mask": "energy_in_mask",
    "deletion_auc": "deletion_auc",
    "insertion_auc": "insertion_auc",
}


@dataclass(frozen=True)
class QualityConfig:
    """How much of the analysis to score.

    Attributes:
        sample_n: most images for deletion/insertion (a seeded sample; all when there are
            fewer).
        sanity_n: images of that sample for the randomisation check.
        steps: deletion/insertion steps.
        seed: seeds the sample, the random baseline and the re-initialisation.
        batch_size: perturbed images per forward pass.
        max_cost: the price of the evidence: deletion/insertion may run at most this many
            perturbed forward passes per analysed image, so the sample shrinks to fit (each
            sampled image costs ``2 + 2 * (steps - 1)`` passes per map scored, methods and
            baselines: 182 for four methods at 16 steps); ``None``: ``sample_n`` whatever
            it costs.
        min_sample: the sample never shrinks below this many images (fewer say little).
    """

    sample_n: int = 256
    sanity_n: int = 64
    steps: int = DEFAULT_STEPS
    seed: int = 0
    batch_size: int = 64
    max_cost: float | None = 16.0
    min_sample: int = 6

    def __post_init__(self) -> None:
        for name in ("sample_n", "sanity_n", "steps", "batch_size", "min_sample"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_cost is not None and not self.max_cost > 0:
            raise ValueError(f"max_cost must be positive or None, got {self.max_cost}")

    def sample_size(self, n_images: int, n_maps: int) -> int:
        """Images of ``n_images`` that deletion/insertion scores ``n_maps`` maps of."""
        wanted = min(self.sample_n, n_images)
        if self.max_cost is None:
            return wanted
        per_image = perturbation_passes(1, n_maps, self.steps)
        affordable = int(self.max_cost * n_images // per_image)
        return min(wanted, max(affordable, self.min_sample))


@dataclass(frozen=True)
class Assessment:
    """Quality of an analysis.

    Attributes:
        columns: per-image columns for the predictions table (``<metric>.<method>``; NaN for
            images outside the sample or without a mask).
        quality: method or baseline → metric → mean; methods also get
            ``randomization_spearman`` (after head and last block) and
            ``randomization_spearman_head``.
        evaluation: how it was measured (for the manifest).
        seconds: wall time of each stage (localisation, deletion/insertion, sanity check).
    """

    columns: dict[str, np.ndarray]
    quality: dict[str, dict[str, float]]
    evaluation: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


def finite_mean(values: np.ndarray) -> float:
    """The mean of the finite values (NaN marks images outside a sample); NaN when none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def assess(
    net: nn.Module,
    maps: Mapping[str, np.ndarray],
    slots: Mapping[str, np.ndarray],
    layers: Mapping[str, str],
    targets: np.ndarray,
    masks: Sequence[np.ndarray | None] | None,
    images_for: Callable[[np.ndarray], torch.Tensor],
    image_size: int,
    cfg: QualityConfig = QualityConfig(),
    precision: str = "fp32",
) -> Assessment:
    """Score every method's maps of the target class, and the two baselines.

    Args:
        net: the classifier the maps explain, in eval mode.
        maps: method → ``(N, S, h, w)`` maps of every image (every class, or a budget that
            holds the true class).
        slots: method → ``(N, S)`` class of each slot, for the methods whose maps hold a
            class budget (:mod:`cam_core.methods.budget`).
        layers: method → the layer it read (for the sanity check's recomputation).
        targets: ``(N,)`` class index per image (the true class).
        masks: bool ``(S, S)`` ground-truth masks (``None`` per image without one), or
            ``None`` when the data has no masks at all (no localisation figures).
        images_for: rows → their normalised images ``(n, 3, S, S)`` (the data layer decodes).
        image_size: ``S``.
        cfg: sample sizes and steps.
        precision: of the perturbed images' forward passes (resolved: ``fp32``, ``bf16`` or
            ``fp16``); the sanity check's maps are computed in fp32 like the maps it checks.
    """
    n = len(targets)
    rows = np.arange(n)
    chosen = {name: maps_for(m, slots.get(name), rows, targets) for name, m in maps.items()}
    placement = placement_of(net)
    h, w = next(iter(chosen.values())).shape[-2:]
    for kind in BASELINES:
        chosen[kind] = baseline_maps(kind, n, h, w, cfg.seed)
    columns: dict[str, np.ndarray] = {}
    watch = Stopwatch()
    if masks is not None:
        with watch.stage("localisation"):
            for name, single in chosen.items():
                peaks = map_peaks(single, image_size, placement=placement)
                columns[f"pointing_hit.{name}"] = pointing_hits(peaks, masks, image_size)
                columns[f"energy_in_mask.{name}"] = energy_in_mask(single, masks, placement)
    size = cfg.sample_size(n, len(chosen))
    sample = np.sort(np.random.default_rng(cfg.seed).choice(n, size=size, replace=False))
    quality: dict[str, dict[str, float]] = {name: {} for name in chosen}
    if len(sample):
        with watch.stage("decoding the sample"):
            images = images_for(sample)
        passes = perturbation_passes(len(sample), len(chosen), cfg.steps)
        with (
            watch.stage("deletion/insertion"),
            ConsoleProgress("deletion/insertion", passes, "images") as bar,
        ):
            all_curves = shared_perturbation_curves(
                net,
                images,
                {name: single[sample] for name, single in chosen.items()},
                targets[sample],
                cfg.steps,
                cfg.batch_size,
                precision,
                bar,
                placement,
            )
        for name, curves in all_curves.items():
            for metric, values in (
                ("deletion_auc", curves.deletion_auc),
                ("insertion_auc", curves.insertion_auc),
            ):
                column = np.full(n, np.nan)
                column[sample] = values
                columns[f"{metric}.{name}"] = column
        sane = sample[: cfg.sanity_n]
        with (
            watch.stage("sanity check"),
            ConsoleProgress("sanity check", len(maps), "methods") as bar,
        ):
            for name in maps:
                stages = randomization_spearman(
                    get_method(name),
                    net,
                    images[: len(sane)],
                    chosen[name][sane],
                    targets[sane],
                    layers[name],
                    cfg.seed,
                )
                quality[name]["randomization_spearman_head"] = stages["head"]
                quality[name]["randomization_spearman"] = stages["head+last block"]
                bar.update()
    for name in chosen:
        for metric in METRICS:
            key = f"{_COLUMN[metric]}.{name}"
            if key in columns:
                quality[name][metric] = finite_mean(columns[key])
    evaluation = {
        **asdict(cfg),
        "sample_size": len(sample),
        "sanity_size": int(min(cfg.sanity_n, len(sample))),
        "baselines": list(BASELINES),
        "sanity_threshold": SANITY_THRESHOLD,
        "deletion_baseline": "gaussian blur (sigma 5 px at 224 px)",
        "target": "true class",
    }
    return Assessment(columns, quality, evaluation, watch.seconds)


def verdicts(quality: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, bool | None]]:
    """For each method: ``faithful`` (deletion AUC below and insertion AUC above both
    baselines) and ``sanity_passed`` (maps change when the model is randomised); ``None``
    where the figure was not measured."""
    result: dict[str, dict[str, bool | None]] = {}
    baselines = [quality[b] for b in BASELINES if b in quality]
    for name, figures in quality.items():
        if name in BASELINES:
            continue
        faithful: bool | None = None
        if "deletion_auc" in figures and baselines:
            faithful = all(
                figures["deletion_auc"] < b.get("deletion_auc", np.inf)
                and figures["insertion_auc"] > b.get("insertion_auc", -np.inf)
                for b in baselines
            )
        spearman = figures.get("randomization_spearman")
        sane = None if spearman is None else bool(spearman < SANITY_THRESHOLD)
        result[name] = {"faithful": faithful, "sanity_passed": sane}
    return result


def quality_table(quality: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Methods and baselines × metrics, with the verdicts, for display."""
    judged = verdicts(quality)
    frame = pd.DataFrame.from_dict(
        {name: dict(figures) for name, figures in quality.items()}, orient="index"
    )
    ordered = [c for c in (*METRICS, "randomization_spearman") if c in frame.columns]
    frame = frame[ordered]
    frame["faithful"] = [judged.get(name, {}).get("faithful") for name in frame.index]
    frame["sanity"] = [judged.get(name, {}).get("sanity_passed") for name in frame.index]
    frame.index.name = "method"
    return frame


def quality_by_class(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """Per true class: the mean of each per-image quality column of ``method``."""
    columns = {
        metric: f"{_COLUMN[metric]}.{method}"
        for metric in METRICS
        if f"{_COLUMN[metric]}.{method}" in table.columns
    }
    grouped = table.groupby("label", sort=False)[list(columns.values())].mean()
    grouped.columns = list(columns)
    grouped["n"] = table.groupby("label", sort=False).size()
    grouped.index.name = "class"
    return grouped


def scores_of(row: Mapping[str, Any], method: str) -> dict[str, float]:
    """One image's quality figures for ``method`` (NaN where not measured: outside the
    faithfulness sample, or no mask)."""
    result = {}
    for metric in METRICS:
        value = row.get(f"{_COLUMN[metric]}.{method}")
        result[metric] = float("nan") if value is None or pd.isna(value) else float(value)
    return result
