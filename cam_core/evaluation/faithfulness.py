"""Does the model depend on what the map shows? Deletion and insertion (Petsiuk et al., 2018).

Pixels are removed (deletion: replaced by a blurred copy of the image) or revealed (insertion:
copied onto the blurred image) in order of map value, in ``steps`` equal steps; after each step
the model's probability of the target class is read. A faithful map makes deletion fall fast
(low area under the curve) and insertion rise fast (high area).

Written here rather than taken from a library: torchcam's ``DeletionInsertionMetric`` (0.5)
computes its own maps and returns only a batch mean, and Quantus 0.6 breaks with numpy 2.4
(``np.trapz``); we need per-image areas and curves for maps already stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from cam_core.methods.layout import fast_layout
from cam_core.methods.placement import RECEPTIVE_FIELD, upsample_maps
from cam_core.modelling.precision import autocast
from cam_core.progress import ConsoleProgress

__all__ = [
    "PerturbationCurves",
    "blurred",
    "perturbation_curves",
    "perturbation_frames",
    "perturbation_passes",
    "perturbed_images",
    "shared_perturbation_curves",
]

DEFAULT_STEPS = 16


@dataclass(frozen=True)
class PerturbationCurves:
    """Target-class probability along deletion and insertion.

    Attributes:
        fractions: ``(steps + 1,)`` share of pixels removed / revealed, 0 to 1.
        deletion: ``(N, steps + 1)``.
        insertion: ``(N, steps + 1)``.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> np.ndarray:
        """``(N,)`` area under each deletion curve (lower is more faithful)."""
        return np.trapezoid(self.deletion, self.fractions, axis=1)

    @property
    def insertion_auc(self) -> np.ndarray:
        """``(N,)`` area under each insertion curve (higher is more faithful)."""
        return np.trapezoid(self.insertion, self.fractions, axis=1)


def blurred(images: torch.Tensor) -> torch.Tensor:
    """The baseline that deleted pixels turn into: a strong Gaussian blur of each image.

    Sigma scales with the side (5 px at 224 px, as in the RISE evaluation).
    """
    side = int(images.shape[-1])
    sigma = max(1.0, 5.0 * side / 224)
    kernel = int(2 * round(2 * sigma) + 1)
    return gaussian_blur(images, [kernel, kernel], [sigma, sigma])


def _ranks(maps: np.ndarray, side: int, placement: str) -> torch.Tensor:
    """Rank of every pixel by map value, 0 = highest, ``(N, side * side)``."""
    up = upsample_maps(maps, (side, side), placement).reshape(len(maps), -1)
    order = np.argsort(-up, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :], axis=1)
    return torch.from_numpy(ranks)


def perturbed_images(
    image: torch.Tensor, baseline: torch.Tensor, ranks: torch.Tensor, count: int, insert: bool
) -> torch.Tensor:
    """One step of one curve: ``count`` top-ranked pixels removed (or revealed when ``insert``).

    Args:
        image, baseline: ``(3, S, S)``.
        ranks: ``(S * S,)`` from the map.
        count: pixels removed or revealed.
        insert: insertion (reveal) instead of deletion (remove).

    Returns:
        ``(3, S, S)``.
    """
    top = (ranks < count).reshape(image.shape[-2:])
    keep_original = top if insert else ~top
    return torch.where(keep_original, image, baseline)


@torch.inference_mode()
def shared_perturbation_curves(
    net: nn.Module,
    images: torch.Tensor,
    maps: Mapping[str, np.ndarray],
    targets: np.ndarray,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
    precision: str = "fp32",
    progress: ConsoleProgress | None = None,
    placement: str = RECEPTIVE_FIELD,
) -> dict[str, PerturbationCurves]:
    """Deletion and insertion curves of several maps of the same images (methods, baselines).

    Every curve starts or ends at the image itself or at its blurred copy, whatever the map,
    so those two passes per image are run once and shared by every map; each map costs
    ``2 * (steps - 1)`` passes per image beyond them.

    Args:
        net: the classifier, ``(N, 3, S, S) → (N, K)`` logits, in eval mode.
        images: normalised images ``(N, 3, S, S)``.
        maps: name → ``(N, h, w)`` one map per image (of the target class), any scale.
        targets: ``(N,)`` class index whose probability is followed.
        steps: number of equal steps (the curves have ``steps + 1`` points).
        batch_size: perturbed images per forward pass.
        precision: of the perturbed passes (``fp32``, ``bf16``, ``fp16``; resolved already).
        progress: counts the perturbed images done, if given.
        placement: where the maps' cells lie (:mod:`cam_core.methods.placement`).

    Returns:
        Name → the curves of its maps.
    """
    n, side = len(images), int(images.shape[-1])
    pixels = side * side
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = [round(f * pixels) for f in fractions]
    names = list(maps)
    ranks = {name: _ranks(np.asarray(maps[name], np.float32), side, placement) for name in names}
    base = blurred(images)
    device = next(net.parameters()).device
    # Job: (image, map name or None for the shared ends, insert, step).
    jobs: list[tuple[int, str | None, bool, int]] = [
        (i, None, end, 0) for i in range(n) for end in (False, True)
    ]
    jobs += [
        (i, name, insert, s)
        for name in names
        for i in range(n)
        for insert in (False, True)
        for s in range(1, steps)
    ]

    def picture(i: int, name: str | None, insert: bool, s: int) -> torch.Tensor:
        if name is None:  # False: the image itself; True: all of it blurred
            return base[i] if insert else images[i]
        return perturbed_images(images[i], base[i], ranks[name][i], counts[s], insert)

    probs = np.zeros(len(jobs), dtype=np.float64)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        batch = fast_layout(torch.stack([picture(*job) for job in chunk]).to(device))
        with autocast(precision, device):
            logits = net(batch).float()
        picked = torch.tensor([int(targets[job[0]]) for job in chunk], device=logits.device)
        probs[start : start + len(chunk)] = (
            torch.softmax(logits, dim=1).gather(1, picked[:, None])[:, 0].cpu().numpy()
        )
        if progress is not None:
            progress.update(len(chunk))
    whole, bare = probs[0 : 2 * n : 2], probs[1 : 2 * n : 2]
    inner = probs[2 * n :].reshape(len(names), n, 2, steps - 1)
    curves = {}
    for index, name in enumerate(names):
        deletion = np.column_stack([whole, inner[index, :, 0], bare])
        insertion = np.column_stack([bare, inner[index, :, 1], whole])
        curves[name] = PerturbationCurves(fractions, deletion, insertion)
    return curves


def perturbation_passes(n_images: int, n_maps: int, steps: int = DEFAULT_STEPS) -> int:
    """Forward passes :func:`shared_perturbation_curves` runs for ``n_maps`` maps of
    ``n_images`` images."""
    return n_images * (2 + n_maps * 2 * (steps - 1))


def perturbation_curves(
    net: nn.Module,
    images: torch.Tensor,
    maps: np.ndarray,
    targets: np.ndarray,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
    placement: str = RECEPTIVE_FIELD,
) -> PerturbationCurves:
    """Deletion and insertion curves of one set of maps already computed (fp32).

    Args:
        net: the classifier, ``(N, 3, S, S) → (N, K)`` logits, in eval mode.
        images: normalised images ``(N, 3, S, S)``.
        maps: ``(N, h, w)`` one map per image (of the target class), any scale.
        targets: ``(N,)`` class index whose probability is followed.
        steps: number of equal steps (the curves have ``steps + 1`` points).
        batch_size: perturbed images per forward pass.
        placement: where the maps' cells lie (:mod:`cam_core.methods.placement`).
    """
    curves = shared_perturbation_curves(
        net, images, {"map": maps}, targets, steps, batch_size, placement=placement
    )
    return curves["map"]


def perturbation_frames(
    image: torch.Tensor,
    single_map: np.ndarray,
    steps: int = DEFAULT_STEPS,
    placement: str = RECEPTIVE_FIELD,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """What the model sees at each step of one image's deletion and insertion curves.

    Args:
        image: normalised ``(3, S, S)``.
        single_map: ``(h, w)`` the map that orders the pixels.
        steps: as in :func:`perturbation_curves`.
        placement: where the map's cells lie (:mod:`cam_core.methods.placement`).

    Returns:
        ``(deleted, inserted)``: ``steps + 1`` normalised images each.
    """
    side = int(image.shape[-1])
    ranks = _ranks(np.asarray(single_map, np.float32)[None], side, placement)[0]
    base = blurred(image[None])[0]
    counts = [round(f * side * side) for f in np.linspace(0.0, 1.0, steps + 1)]
    deleted = [perturbed_images(image, base, ranks, c, insert=False) for c in counts]
    inserted = [perturbed_images(image, base, ranks, c, insert=True) for c in counts]
    return deleted, inserted
