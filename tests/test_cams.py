from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cam_core.cams import cams_for_files, upsample_maps
from cam_core.data import Dataset
from cam_core.model_files import load_model


@pytest.fixture(scope="module")
def maps_and_logits(tiny_model_dir: Path, tiny_dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(tiny_model_dir, "cpu")
    paths = [s.path for s in tiny_dataset.samples]
    return cams_for_files(model, paths, batch_size=64, num_workers=0)


def test_shapes_dtypes_and_finiteness(
    maps_and_logits: tuple[np.ndarray, np.ndarray], tiny_dataset: Dataset
) -> None:
    logits, maps = maps_and_logits
    n = len(tiny_dataset.samples)
    assert logits.shape == (n, 2) and logits.dtype == np.float32
    assert maps.shape == (n, 2, 6, 6) and maps.dtype == np.float16
    assert np.isfinite(maps).all() and np.isfinite(logits).all()


def test_the_mean_of_each_class_map_is_its_logit(
    maps_and_logits: tuple[np.ndarray, np.ndarray],
) -> None:
    logits, maps = maps_and_logits
    means = maps.astype(np.float32).mean(axis=(2, 3))
    scale = np.abs(maps.astype(np.float32)).max()
    assert np.allclose(means, logits, atol=2e-3 * max(1.0, scale), rtol=1e-3)
    # The two classes really get different maps.
    assert not np.allclose(maps[:, 0], maps[:, 1])


def test_batch_size_does_not_change_results(
    tiny_model_dir: Path, tiny_dataset: Dataset, maps_and_logits: tuple[np.ndarray, np.ndarray]
) -> None:
    model = load_model(tiny_model_dir, "cpu")
    paths = [s.path for s in tiny_dataset.samples]
    logits, maps = cams_for_files(model, paths, batch_size=5, num_workers=0)
    assert np.allclose(logits, maps_and_logits[0], atol=1e-4)
    assert np.array_equal(maps, maps_and_logits[1])


def test_upsampling_keeps_shape_and_values() -> None:
    flat = np.full((2, 3, 4), 1.5, np.float16)
    up = upsample_maps(flat, (12, 16))
    assert up.shape == (2, 12, 16) and up.dtype == np.float32
    assert np.allclose(up, 1.5)
    ramp = np.arange(16, dtype=np.float32).reshape(4, 4)
    big = upsample_maps(ramp, (40, 40))
    assert big.min() >= ramp.min() - 1e-5 and big.max() <= ramp.max() + 1e-5
    assert big[0, 0] < big[-1, -1]
