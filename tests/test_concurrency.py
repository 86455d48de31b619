"""The cached model is shared by every dashboard session: threads must not disturb each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from cam_core.analysis.predict import predict_images
from cam_core.data.sources import Dataset
from cam_core.intake.images import load_image_file
from cam_core.modelling.model_files import load_model


def test_eight_threads_give_the_same_maps_as_one(
    tiny_model_dir: Path, tiny_dataset: Dataset
) -> None:
    model = load_model(tiny_model_dir, "cpu")
    images = [(str(s.path), load_image_file(s.path)) for s in tiny_dataset.samples]
    state_before = {k: v.clone() for k, v in model.net.state_dict().items()}
    reference = predict_images(model, images, "cam", batch_size=7)

    def job(offset: int) -> list[np.ndarray]:
        # Each thread asks in its own order and batch size, many times.
        order = images[offset:] + images[:offset]
        results = []
        for _ in range(3):
            results.extend(
                p.maps for p in predict_images(model, order, "cam", batch_size=3 + offset % 5)
            )
        return results[: len(order)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outputs = list(pool.map(job, range(8)))
    for offset, maps in enumerate(outputs):
        expected = [r.maps for r in reference[offset:] + reference[:offset]]
        for got, want in zip(maps, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not model.net.training
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, state_before[key]), f"{key} changed during inference"
