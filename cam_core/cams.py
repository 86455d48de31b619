"""Class activation maps for whole datasets, in batches, from the same pass as the logits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from cam_core.images import load_image_file, to_model_tensor
from cam_core.model_files import LoadedModel
from cam_core.progress import ConsoleProgress, ProgressFn

__all__ = ["cams_for_batch", "cams_for_files", "upsample_maps"]

log = logging.getLogger(__name__)


@torch.inference_mode()
def cams_for_batch(model: LoadedModel, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and every class map for a batch.

    Args:
        model: a loaded model.
        images: normalised images ``(N, 3, S, S)`` on any device.

    Returns:
        ``(logits, maps)`` on CPU, float32: ``(N, K)`` and ``(N, K, h, w)``.
    """
    x = images.to(model.device, non_blocking=True)
    if model.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16):
            logits, maps = model.net.forward_with_maps(x)
    else:
        logits, maps = model.net.forward_with_maps(x)
    return logits.float().cpu(), maps.float().cpu()


class _Files(TorchDataset[torch.Tensor]):
    def __init__(
        self, paths: Sequence[Path], size: int, mean: tuple[float, ...], std: tuple[float, ...]
    ):
        self.paths, self.size, self.mean, self.std = list(paths), size, mean, std

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_model_tensor(load_image_file(self.paths[index]), self.size, self.mean, self.std)


def cams_for_files(
    model: LoadedModel,
    paths: Sequence[Path],
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the model over image files in batches.

    Args:
        model: a loaded model.
        paths: image files, read through the safe image-intake path.
        batch_size: images per forward pass.
        num_workers: DataLoader workers decoding images (``None``: one per core, at most 4).
        progress: optional callback (message, fraction done).

    Returns:
        ``(logits, maps)``: float32 ``(N, K)`` and float16 ``(N, K, h, w)``, row-aligned with
        ``paths``.
    """
    card = model.card
    workers = num_workers if num_workers is not None else min(4, torch.get_num_threads())
    loader = DataLoader(
        _Files(paths, card.image_size, card.mean, card.std),
        batch_size=batch_size,
        num_workers=workers if len(paths) > batch_size else 0,
        pin_memory=model.device.type == "cuda",
    )
    all_logits: list[np.ndarray] = []
    all_maps: list[np.ndarray] = []
    with ConsoleProgress("class maps", len(paths), "images") as bar:
        for images in loader:
            logits, maps = cams_for_batch(model, images)
            all_logits.append(logits.numpy())
            all_maps.append(maps.numpy().astype(np.float16))
            bar.update(len(images))
            if progress is not None:
                progress("computing class maps", bar.done / max(1, len(paths)))
    n_classes = len(card.classes)
    if not all_logits:
        return np.zeros((0, n_classes), np.float32), np.zeros((0, n_classes, 1, 1), np.float16)
    return np.concatenate(all_logits), np.concatenate(all_maps)


def _source_coordinates(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``n_out`` pixels: the two map cells around it and the weight of the second.

    Pixel ``p`` sits at map coordinate ``p * n_in / n_out`` (cell ``i`` on pixel
    ``stride * i``), held at the last cell beyond it.
    """
    source = np.minimum(np.arange(n_out, dtype=np.float64) * n_in / n_out, n_in - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (source - low).astype(np.float32)


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resample maps onto image pixels, each cell on its receptive field's centre.

    A stack of same-padded convolutions with total stride ``s`` computes cell ``(i, j)`` from a
    window centred on pixel ``(s*i, s*j)``. Stretching the grid over the image instead (as
    ``F.interpolate(align_corners=False)`` or an image extent does) would put that value
    ``(s - 1) / 2`` pixels further right and down: 3.5 px for the demo CNN, 15.5 px for a
    ResNet at 512 px. ``s`` is taken as ``H / h``, exact when the input side is a multiple of
    the network's stride (every preset); beyond the last centre the edge value is held.

    Args:
        maps: ``(h, w)``, ``(K, h, w)`` or ``(N, K, h, w)``.
        size: target ``(H, W)``.

    Returns:
        float32 array with the same leading shape and trailing ``(H, W)``.
    """
    values = np.asarray(maps, dtype=np.float32)
    height, width = values.shape[-2:]
    top, bottom, fy = _source_coordinates(size[0], height)
    left, right, fx = _source_coordinates(size[1], width)
    rows = values[..., top, :] * (1 - fy)[:, None] + values[..., bottom, :] * fy[:, None]
    return np.ascontiguousarray(rows[..., left] * (1 - fx) + rows[..., right] * fx)
