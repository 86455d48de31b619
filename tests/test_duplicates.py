"""Near-duplicates: planted copies of demo images (resized, re-encoded, cropped) are found,
distinct demo images are not paired."""

from __future__ import annotations

import io
import random

import numpy as np
import pandas as pd
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
