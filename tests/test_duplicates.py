"""Near-duplicates: planted copies of demo images (resized, re-encoded, cropped) are found,
distinct demo images are not paired."""

from __future__ import annotations

import io
import random

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cam_core.data.demo_data import BREEDS, draw_sample
from cam_core.evaluation.duplicates import KINDS, image_signatures, near_duplicates
from cam_core.intake.images import to_model_tensor

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _signatures(images: list[Image.Image]) -> np.ndarray:
    return image_signatures(torch.stack([to_model_tensor(im, 96, MEAN, STD) for im in images]))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, share: float) -> Image.Image:
    cut = round(image.width * share)
    return image.crop((cut, cut, image.width - cut, image.height - cut))


COPIES = {
    "exact": lambda im: im,
    "resized": lambda im: im.resize((150, 150), Image.Resampling.BICUBIC),
    "jpeg": lambda im: _jpeg(im, 60),
    "crop": lambda im: _crop(im, 0.05),
    "crop and jpeg": lambda im: _jpeg(_crop(im, 0.03), 75),
}


def test_planted_copies_of_training_images_are_all_found_and_nothing_else() -> None:
    rng = random.Random(7)
    training = [draw_sample(BREEDS[i % 6], 96, rng)[0] for i in range(120)]
    validation = [draw_sample(BREEDS[i % 6], 96, rng)[0] for i in range(60)]
    clean = near_duplicates(_signatures(validation), _signatures(training))
    assert clean.empty  # distinct demo images are never paired
    planted = {
        kind: [make(training[i]) for i in range(5 * k, 5 * k + 5)]
        for k, (kind, make) in enumerate(COPIES.items())
    }
    copies = [image for images in planted.values() for image in images]
    pairs = near_duplicates(_signatures(validation + copies), _signatures(training))
    leaked = pairs[pairs["kind"] == KINDS[1]]
    expected = {(60 + j, j) for j in range(len(copies))}  # copy j is of training image j
    assert set(zip(leaked["row"], leaked["other"], strict=True)) == expected
    assert (pairs["kind"] == KINDS[0]).sum() == 0


def test_copies_within_the_validation_images_are_paired_once_closest_first() -> None:
    rng = random.Random(11)
    images = [draw_sample(BREEDS[i % 6], 96, rng)[0] for i in range(40)]
    images += [_jpeg(images[3], 50), _crop(images[10], 0.06)]
    pairs = near_duplicates(_signatures(images))
    assert list(pairs.columns) == ["row", "other", "kind", "distance"]
    assert set(zip(pairs["row"], pairs["other"], strict=True)) == {(3, 40), (10, 41)}
    assert pairs["distance"].is_monotonic_increasing and (pairs["kind"] == KINDS[0]).all()
    assert near_duplicates(_signatures(images), max_distance=1e-9).empty


def test_signatures_have_one_unit_row_per_scale() -> None:
    images = [draw_sample(BREEDS[0], 96, random.Random(1))[0]]
    signatures = _signatures(images).astype(np.float32)
    assert signatures.shape == (1, 5, 192)
    np.testing.assert_allclose(np.linalg.norm(signatures, axis=2), 1.0, atol=1e-2)
    np.testing.assert_allclose(signatures.mean(axis=2), 0.0, atol=1e-2)
    assert isinstance(near_duplicates(signatures), pd.DataFrame)


def _unit(rng: np.random.Generator, n: int, scales: int = 3, dim: int = 12) -> np.ndarray:
    x = rng.normal(size=(n, scales, dim))
    x -= x.mean(axis=2, keepdims=True)
    return (x / np.linalg.norm(x, axis=2, keepdims=True)).astype(np.float32)


def _distance_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """1 - the largest cosine between one's whole-image row and any row of the other."""
    best = max(float(a[0] @ b[s]) for s in range(b.shape[0]))
    best = max(best, max(float(a[s] @ b[0]) for s in range(a.shape[0])))
    return 1.0 - best


def test_pair_distances_match_a_hand_computation_from_either_side() -> None:
    rng = np.random.default_rng(3)
    val = _unit(rng, 5)
    train = _unit(rng, 4)
    # validation row 0 is training row 2's second crop; validation row 3's second crop is
    # training row 1's whole image (each up to a little noise); validation 4 copies val 0's crop.
    val[0, 0] = train[2, 1]
    nudged = train[1, 0] + 0.1 * val[3, 1]
    val[3, 1] = nudged / np.linalg.norm(nudged)
    val[4, 1] = val[0, 0]
    pairs = near_duplicates(val, train, max_distance=0.05)
    found = {(r, o, k): d for r, o, k, d in pairs.itertuples(index=False)}
    assert set(found) == {(0, 2, "training"), (3, 1, "training"), (0, 4, "validation")}
    for (r, o, k), d in found.items():
        other = train[o] if k == "training" else val[o]
        assert d == pytest.approx(max(_distance_by_hand(val[r], other), 0.0), abs=1e-5)
    assert found[(0, 2, "training")] == 0.0 and found[(0, 4, "validation")] == 0.0
    assert 0.0 < found[(3, 1, "training")] < 0.05
    assert pairs["distance"].tolist() == sorted(pairs["distance"])


def test_empty_and_single_image_inputs() -> None:
    rng = np.random.default_rng(0)
    one = _unit(rng, 1)
    assert near_duplicates(one).empty
    assert near_duplicates(one[:0], _unit(rng, 3)).empty
    pairs = near_duplicates(one, one.copy())
    assert pairs[["row", "other", "kind"]].values.tolist() == [[0, 0, "training"]]
    assert near_duplicates(_unit(rng, 3), one[:0]).empty


def test_signatures_are_float16_centred_per_image_and_of_unit_length() -> None:
    images = torch.zeros(3, 3, 40, 40)
    images[0] += 2.0  # a bright image
    images[1, 0, :, :7] = 0.01  # one with very little contrast: its rows are short
    images[2] = torch.linspace(-1, 1, 40)  # a horizontal ramp
    images[2, :, :, :4] = 3.0  # with a bright band that only the whole image holds
    signatures = image_signatures(images)
    assert signatures.dtype == np.float16 and signatures.shape == (3, 5, 192)
    rows = signatures.astype(np.float32)
    np.testing.assert_allclose(rows[1:].mean(axis=2), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(rows[1:], axis=2), 1.0, atol=2e-3)
    # the 80% crop keeps pixels 4..35 of 40: the band (columns 0..3) is outside it
    crop = images[2:3, :, 4:36, 4:36]
    small = torch.nn.functional.adaptive_avg_pool2d(crop, 8).flatten(1)
    small = small - small.mean(dim=1, keepdim=True)
    expected = (small / small.norm(dim=1, keepdim=True)).numpy()[0]
    np.testing.assert_allclose(rows[2, 4], expected, atol=2e-3)


def test_distances_of_stored_float16_signatures_are_computed_in_float32() -> None:
    rng = np.random.default_rng(8)
    val = _unit(rng, 4, scales=2, dim=192).astype(np.float16)
    nudged = val[1, 0].astype(np.float32) + 0.05 * rng.normal(size=192).astype(np.float32)
    val[2, 0] = (nudged / np.linalg.norm(nudged)).astype(np.float16)
    pairs = near_duplicates(val, max_distance=0.5)
    wide = val.astype(np.float64)
    (r, o, _, d) = next(pairs.itertuples(index=False))
    assert (r, o) == (1, 2)
    assert d == pytest.approx(_distance_by_hand(wide[1], wide[2]), abs=2e-6)


def test_distances_of_float16_signatures_are_computed_in_float32_and_never_negative() -> None:
    """Signatures are stored as float16; the distances are float32 arithmetic on them (float16
    arithmetic would be off by ~1e-4), and rounding never makes a distance negative."""
    from cam_core.evaluation.duplicates import near_duplicates

    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 5, 192)).astype(np.float32)
    base /= np.linalg.norm(base, axis=2, keepdims=True)
    near = base.copy()
    near[1] = base[0] + 0.01 * rng.normal(size=(5, 192)).astype(np.float32)
    near[1] /= np.linalg.norm(near[1], axis=1, keepdims=True)
    stored = near.astype(np.float16)
    pairs = near_duplicates(stored, max_distance=0.5)
    ((row, other, distance),) = pairs[["row", "other", "distance"]].itertuples(index=False)
    wide = stored.astype(np.float64)
    similarity = max(float((wide[0, 0] @ wide[1].T).max()), float((wide[1, 0] @ wide[0].T).max()))
    assert (row, other) == (0, 1)
    assert distance == pytest.approx(1.0 - similarity, abs=1e-6)
    # a stored signature whose norm rounds above 1: its copy is at distance 0, not below
    long = np.zeros((2, 1, 2), np.float16)
    long[:, 0] = [1.0, 0.0312]  # norm 1.0005 after rounding
    copies = near_duplicates(long, max_distance=0.1)
    assert copies["distance"].tolist() == [0.0]
