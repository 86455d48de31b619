"""Which layer is worth reading: candidate layers scored with the same evidence as methods.

A gradient method can read any layer. Deeper layers give coarser maps that track the class
score closely; earlier ones give finer maps that may say less about the decision. For each
candidate (:func:`cam_core.methods.tokens.candidate_layers`), the method's maps of the true
class on a seeded sample are scored by deletion/insertion against the random and centred
baselines at the same grid, and by the randomisation sanity check. The choice is the most
faithful candidate (insertion AUC minus deletion AUC) among those that are faithful (beat both
baselines on both curves) and pass the sanity check; failing that, the most faithful that passes
the sanity check; failing that, the first candidate (the body's output, or a ViT's last
block). The record says which rule decided.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cam_core.errors import MethodError
from cam_core.evaluation.baselines import BASELINES, baseline_maps
from cam_core.evaluation.faithfulness import DEFAULT_STEPS, shared_perturbation_curves
from cam_core.evaluation.sanity import randomization_spearman
from cam_core.evaluation.suite import finite_mean, verdicts
from cam_core.methods import get_method, layer_readers
from cam_core.methods.tokens import candidate_layers, placement_of
from cam_core.progress import ConsoleProgress

__all__ = [
    "DEFAULT_LAYER_SAMPLE",
    "LayerChoice",
    "LayerScore",
    "choose_layer",
]

DEFAULT_LAYER_SAMPLE = 64

_BEST_FAITHFUL = (
    "the most faithful of the candidates that beat both baselines and pass the sanity check"
)
_BEST_SANE = (
    "no candidate beat both baselines while passing the sanity check; the most faithful that "
    "passes it"
)
_FIRST = "no candidate passed the sanity check; the model's default layer"
_ONLY = "the model has one candidate layer"


@dataclass(frozen=True)
class LayerScore:
    """One candidate layer's evidence.

    Attributes:
        layer: dotted name.
        grid: ``(h, w)`` of its maps.
        deletion_auc, insertion_auc: means over the sample (lower and higher are better).
        baselines: per baseline (``random``, ``centre``): its deletion and insertion AUC at
            the same grid.
        randomization_spearman: median rank correlation after randomising the head and the
            last block (below the threshold passes).
        faithful: both AUCs beat both baselines.
        sanity_passed: the maps change when the model is randomised.
    """

    layer: str
    grid: tuple[int, int]
    deletion_auc: float
    insertion_auc: float
    baselines: dict[str, dict[str, float]]
    randomization_spearman: float
    faithful: bool
    sanity_passed: bool

    @property
    def margin(self) -> float:
        """Insertion AUC minus deletion AUC: how much the map's order matters to the score."""
        return self.insertion_auc - self.deletion_auc

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["grid"] = list(self.grid)
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LayerScore:
        """Read a manifest entry.

        Raises:
            ValueError, KeyError, TypeError: a damaged entry.
        """
        return cls(
            layer=str(raw["layer"]),
            grid=(int(raw["grid"][0]), int(raw["grid"][1])),
            deletion_auc=float(raw["deletion_auc"]),
            insertion_auc=float(raw["insertion_auc"]),
            baselines={
                str(k): {str(m): float(v) for m, v in dict(b).items()}
                for k, b in dict(raw.get("baselines", {})).items()
            },
            randomization_spearman=float(raw["randomization_spearman"]),
            faithful=bool(raw["faithful"]),
            sanity_passed=bool(raw["sanity_passed"]),
        )


@dataclass(frozen=True)
class LayerChoice:
    """The candidates, their scores and the layer chosen (the manifest's ``layer_choice``).

    Attributes:
        method: the method whose maps were scored.
        chosen: the layer picked.
        reason: which rule picked it.
        candidates: every candidate's scores, coarse to fine (empty when there was one).
        sample_size: images scored; sanity_size: of them, for the sanity check.
        steps, seed: of deletion/insertion and of the sample.
        seconds: wall time of the comparison.
    """

    method: str
    chosen: str
    reason: str
    candidates: tuple[LayerScore, ...] = ()
    sample_size: int = 0
    sanity_size: int = 0
    steps: int = DEFAULT_STEPS
    seed: int = 0
    seconds: float = 0.0

    def score_of(self, layer: str) -> LayerScore | None:
        """The scores of ``layer``, if it was a scored candidate."""
        return next((c for c in self.candidates if c.layer == layer), None)

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["candidates"] = [c.to_json() for c in self.candidates]
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LayerChoice:
        """Read the manifest's block.

        Raises:
            ValueError, KeyError, TypeError: a damaged block.
        """
        return cls(
            method=str(raw["method"]),
            chosen=str(raw["chosen"]),
            reason=str(raw["reason"]),
            candidates=tuple(LayerScore.from_json(c) for c in raw.get("candidates", [])),
            sample_size=int(raw.get("sample_size", 0)),
            sanity_size=int(raw.get("sanity_size", 0)),
            steps=int(raw.get("steps", DEFAULT_STEPS)),
            seed=int(raw.get("seed", 0)),
            seconds=float(raw.get("seconds", 0.0)),
        )


def _decide(scores: Sequence[LayerScore]) -> tuple[str, str]:
    good = [s for s in scores if s.faithful and s.sanity_passed]
    if good:
        return max(good, key=lambda s: s.margin).layer, _BEST_FAITHFUL
    sane = [s for s in scores if s.sanity_passed]
    if sane:
        return max(sane, key=lambda s: s.margin).layer, _BEST_SANE
    return scores[0].layer, _FIRST


def choose_layer(
    net: nn.Module,
    images_for: Callable[[np.ndarray], torch.Tensor],
    targets: np.ndarray,
    image_size: int,
    method: str | None = None,
    candidates: Sequence[str] | None = None,
    sample_n: int = DEFAULT_LAYER_SAMPLE,
    sanity_n: int = 16,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 64,
) -> LayerChoice:
    """Score each candidate layer on a seeded sample and pick one.

    Args:
        net: the classifier, in eval mode.
        images_for: rows → their normalised images ``(n, 3, S, S)``.
        targets: ``(N,)`` true class of every image (the sample is drawn from these rows).
        image_size: ``S``.
        method: a method that reads a layer (default: the first gradient method that applies).
        candidates: the layers to compare (default: :func:`candidate_layers`).
        sample_n: most images scored.
        sanity_n: of them, for the sanity check.
        steps: deletion/insertion steps.
        seed: seeds the sample, the random baseline and the re-initialisation.
        batch_size: perturbed images per forward pass.

    Raises:
        MethodError: the method reads no layer (exact CAM, attention rollout) or does not
            apply, no image to score, or a candidate that is not a layer of the model.
    """
    if method is None:
        readers = layer_readers(net)
        if not readers:
            raise MethodError("comparing layers needs a gradient method; none applies")
        method = readers[0]
    explainer = get_method(method)
    reason = explainer.applies_to(net)
    if reason is not None:
        raise MethodError(f"{explainer.title} does not apply to this model: {reason}")
    if explainer.shares_forward or explainer.class_agnostic:
        raise MethodError(
            f"{explainer.title} reads no chosen layer; compare layers with a gradient method "
            "(gradcam, gradcampp, layercam)"
        )
    layers = list(dict.fromkeys(candidates or candidate_layers(net, image_size)))
    if len(layers) == 1:
        return LayerChoice(method=method, chosen=layers[0], reason=_ONLY, seed=seed)
    start = time.perf_counter()
    n = len(targets)
    if n == 0:
        raise MethodError("no image to compare the layers on")
    size = min(sample_n, n)
    sample = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    images = images_for(sample)
    chosen_targets = np.asarray(targets)[sample]
    own = torch.as_tensor(chosen_targets, dtype=torch.int64)[:, None]
    placement = placement_of(net)
    sane = min(sanity_n, size)
    scores = []
    with ConsoleProgress("comparing layers", len(layers), "layers") as bar:
        for layer in layers:
            maps = explainer.explain(net, images, layer, own).numpy()[:, 0]
            h, w = maps.shape[-2:]
            scored: dict[str, np.ndarray] = {"method": maps}
            for kind in BASELINES:
                scored[kind] = baseline_maps(kind, size, h, w, seed)
            curves = shared_perturbation_curves(
                net,
                images,
                scored,
                chosen_targets,
                steps,
                batch_size,
                placement=placement,
            )
            figures = {
                name: {
                    "deletion_auc": finite_mean(c.deletion_auc),
                    "insertion_auc": finite_mean(c.insertion_auc),
                }
                for name, c in curves.items()
            }
            spearman = randomization_spearman(
                explainer, net, images[:sane], maps[:sane], chosen_targets[:sane], layer, seed
            )["head+last block"]
            own_figures = figures.pop("method")
            # the quality table's own rule: beat both baselines on both curves; maps that change
            verdict = verdicts(
                {"method": {**own_figures, "randomization_spearman": spearman}, **figures}
            )["method"]
            scores.append(
                LayerScore(
                    layer=layer,
                    grid=(int(h), int(w)),
                    deletion_auc=own_figures["deletion_auc"],
                    insertion_auc=own_figures["insertion_auc"],
                    baselines=figures,
                    randomization_spearman=spearman,
                    faithful=bool(verdict["faithful"]),
                    sanity_passed=bool(verdict["sanity_passed"]),
                )
            )
            bar.update()
    chosen, why = _decide(scores)
    return LayerChoice(
        method=method,
        chosen=chosen,
        reason=why,
        candidates=tuple(scores),
        sample_size=size,
        sanity_size=sane,
        steps=steps,
        seed=seed,
        seconds=round(time.perf_counter() - start, 2),
    )
