"""Deletion/insertion on a model whose answer we know: it looks only at one corner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cam_core.evaluation.baselines import baseline_maps
from cam_core.evaluation.faithfulness import (
    blurred,
    perturbation_curves,
    perturbation_passes,
    perturbed_images,
    shared_perturbation_curves,
)
from cam_core.methods.placement import PATCHES, RECEPTIVE_FIELD, upsample_maps
from cam_core.modelling.models import CamNet, build_body

SIZE = 32


CHECKER = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1.0


class CornerModel(nn.Module):
    """Logit of class 0 = match of the top-left 8×8 corner with a checkerboard (a pattern the
    blur washes out); class 1 = its negative."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corner = (x[:, :, :8, :8] * CHECKER).mean(dim=(1, 2, 3))
        return torch.stack([corner, -corner], dim=1) * self.scale


def _images() -> torch.Tensor:
    images = torch.zeros(4, 3, SIZE, SIZE)
    images[:, :, :8, :8] = 2.0 * CHECKER
    return images


def test_a_map_on_the_evidence_beats_one_elsewhere() -> None:
    net = CornerModel().eval()
    on_corner = np.zeros((4, 4, 4), np.float32)
    on_corner[:, 0, 0] = 1.0
    elsewhere = np.zeros((4, 4, 4), np.float32)
    elsewhere[:, 3, 3] = 1.0
    targets = np.zeros(4, dtype=int)
    good = perturbation_curves(net, _images(), on_corner, targets, steps=8, batch_size=7)
    bad = perturbation_curves(net, _images(), elsewhere, targets, steps=8, batch_size=64)
    assert good.deletion.shape == (4, 9) and good.fractions.tolist()[::4] == [0.0, 0.5, 1.0]
    # Both curves start at the original probability and end at the fully blurred one.
    assert np.allclose(good.deletion[:, 0], good.insertion[:, -1])
    assert np.allclose(good.deletion[:, -1], good.insertion[:, 0])
    assert np.allclose(good.deletion[:, 0], bad.deletion[:, 0])
    assert (good.deletion_auc < bad.deletion_auc - 0.05).all()
    assert (good.insertion_auc > bad.insertion_auc + 0.05).all()
    random = baseline_maps("random", 4, 4, 4, seed=0)
    noisy = perturbation_curves(net, _images(), random, targets, steps=8)
    assert (good.deletion_auc <= noisy.deletion_auc + 1e-9).all()


def test_perturbation_replaces_exactly_the_top_pixels() -> None:
    image = torch.ones(3, 4, 4)
    base = torch.zeros(3, 4, 4)
    ranks = torch.arange(16)
    deleted = perturbed_images(image, base, ranks, 5, insert=False)
    inserted = perturbed_images(image, base, ranks, 5, insert=True)
    assert deleted[0].flatten().tolist() == [0.0] * 5 + [1.0] * 11
    assert inserted[0].flatten().tolist() == [1.0] * 5 + [0.0] * 11


def test_blur_keeps_shape_and_smooths() -> None:
    images = _images()
    soft = blurred(images)
    assert soft.shape == images.shape and soft.abs().max() < 0.5 * images.abs().max()
    assert CornerModel()(soft)[:, 0].abs().max() < 1.0 < CornerModel()(images)[:, 0].min()


def _unshared_curves(
    net: nn.Module, images: torch.Tensor, single: np.ndarray, targets: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every point of both curves from its own pass, as the method defines them."""
    side = images.shape[-1]
    order = np.argsort(-_upsampled(single, side), axis=1, kind="stable")
    ranks = torch.from_numpy(np.argsort(order, axis=1))
    base = blurred(images)
    counts = [round(f * side * side) for f in np.linspace(0, 1, steps + 1)]
    curves = np.zeros((2, len(images), steps + 1))
    with torch.no_grad():
        for i in range(len(images)):
            for c, count in enumerate(counts):
                for kind, insert in ((0, False), (1, True)):
                    x = perturbed_images(images[i], base[i], ranks[i], count, insert)
                    probs = torch.softmax(net(x[None]), dim=1)[0]
                    curves[kind, i, c] = float(probs[int(targets[i])])
    return curves[0], curves[1]


def _upsampled(single: np.ndarray, side: int) -> np.ndarray:
    from cam_core.methods.placement import upsample_maps

    return upsample_maps(single.astype(np.float32), (side, side)).reshape(len(single), -1)


def test_maps_of_the_same_images_share_the_two_end_passes() -> None:
    """Methods and baselines scored together: each image's unperturbed and fully blurred
    passes run once for all maps, every curve equals its own pass-by-pass computation, and
    the baselines are maps like any other (computed once, scored beside the methods)."""
    net = CornerModel().eval()
    images = _images()
    targets = np.array([0, 0, 1, 1])
    steps = 4
    corner = np.zeros((4, 4, 4), np.float32)
    corner[:, 0, 0] = 1.0
    maps = {
        "corner": corner,
        "random": baseline_maps("random", 4, 4, 4, seed=3),
        "centre": baseline_maps("centre", 4, 4, 4),
    }
    seen: list[int] = []
    net.register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
    curves = shared_perturbation_curves(net, images, maps, targets, steps, batch_size=7)
    assert sum(seen) == perturbation_passes(4, 3, steps) == 4 * (2 + 3 * 2 * (steps - 1))
    for name, single in maps.items():
        deletion, insertion = _unshared_curves(net, images, single, targets, steps)
        np.testing.assert_allclose(curves[name].deletion, deletion, atol=1e-6)
        np.testing.assert_allclose(curves[name].insertion, insertion, atol=1e-6)
    # Where class 0 is the target, removing its corner first makes the probability fall first.
    assert (curves["corner"].deletion_auc[:2] < curves["random"].deletion_auc[:2]).all()


@pytest.mark.parametrize(
    ("side", "sigma", "kernel"), [(224, 5.0, 21), (448, 10.0, 41), (32, 1.0, 5)]
)
def test_blur_sigma_is_five_pixels_at_224_and_never_below_one(
    side: int, sigma: float, kernel: int
) -> None:
    from torchvision.transforms.functional import gaussian_blur

    images = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(side))
    expected = gaussian_blur(images, [kernel, kernel], [sigma, sigma])
    torch.testing.assert_close(blurred(images), expected)


def test_ties_in_a_map_are_ranked_in_pixel_order() -> None:
    from cam_core.evaluation.faithfulness import _ranks

    flat = np.full((2, 4, 4), 0.5, np.float32)
    ranks = _ranks(flat, 64, RECEPTIVE_FIELD).numpy()
    assert ranks.shape == (2, 64 * 64)
    assert ranks[0].tolist() == list(range(64 * 64)) == ranks[1].tolist()
    # two plateaus (left half high, right half low): within each, pixel order
    step = np.zeros((1, 4, 4), np.float32)
    step[0, :, :2] = 1.0
    step[0, 1, 3] = 0.5
    values = upsample_maps(step, (64, 64)).reshape(-1)
    ranks = _ranks(step, 64, RECEPTIVE_FIELD).numpy()[0]
    for level in (1.0, 0.0):
        where = np.flatnonzero(values == level)
        assert len(where) > 500 and np.all(np.diff(ranks[where]) == 1)


def test_frames_are_what_the_curves_score() -> None:
    """The frames shown for one image are the images whose probabilities make its curves."""
    from cam_core.evaluation.faithfulness import perturbation_frames

    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 2).eval()
    image = torch.randn(3, 48, 48, generator=torch.Generator().manual_seed(1))
    single = np.random.default_rng(2).random((6, 6)).astype(np.float32)
    deleted, inserted = perturbation_frames(image, single, steps=4)
    assert len(deleted) == len(inserted) == 5
    base = blurred(image[None])[0]
    torch.testing.assert_close(deleted[0], image)
    torch.testing.assert_close(deleted[-1], base)
    torch.testing.assert_close(inserted[0], base)
    torch.testing.assert_close(inserted[-1], image)
    changed = [int((d != image).any(dim=0).sum()) for d in deleted]
    shown = [int((i == image).all(dim=0).sum()) for i in inserted]
    assert changed[2] == 48 * 48 // 2 and shown[1] >= 48 * 48 // 4 - 5
    assert changed == sorted(changed) and shown == sorted(shown)
    # a transformer's cells lie on patch centres: other pixels go first, in frames and curves
    patched = perturbation_frames(image, single, steps=4, placement=PATCHES)
    assert not torch.equal(patched[0][2], deleted[2])
    for placement, (shown_del, shown_ins) in (
        (RECEPTIVE_FIELD, (deleted, inserted)),
        (PATCHES, patched),
    ):
        curves = perturbation_curves(
            net, image[None], single[None], np.array([1]), steps=4, placement=placement
        )
        with torch.inference_mode():
            probs_del = torch.softmax(net(torch.stack(shown_del)), 1)[:, 1].numpy()
            probs_ins = torch.softmax(net(torch.stack(shown_ins)), 1)[:, 1].numpy()
        np.testing.assert_allclose(curves.deletion[0], probs_del, atol=1e-5)
        np.testing.assert_allclose(curves.insertion[0], probs_ins, atol=1e-5)
