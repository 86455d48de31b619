"""Class activation maps for whole datasets, in batches, from the same pass as the logits."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from cam_core.errors import MethodError
from cam_core.images import load_image_file, to_model_tensor
from cam_core.methods import DEFAULT_LAYER, get_method
from cam_core.model_files import LoadedModel
from cam_core.models import CamNet
from cam_core.precision import autocast, resolve_precision
from cam_core.progress import ConsoleProgress, ProgressFn

__all__ = ["ExplainedFiles", "cams_for_batch", "explain_files", "load_images", "upsample_maps"]

log = logging.getLogger(__name__)


@torch.inference_mode()
def cams_for_batch(
    model: LoadedModel, images: torch.Tensor, precision: str = "fp32"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits and, where the head allows exact CAM, every class map, from one forward pass.

    Args:
        model: a loaded model.
        images: normalised images ``(N, 3, S, S)`` on any device.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (:mod:`cam_core.precision`).

    Returns:
        ``(logits, maps)`` on CPU, float32: ``(N, K)`` and ``(N, K, h, w)``; ``maps`` is
        ``None`` for a model without a CAM head.
    """
    resolved = resolve_precision(precision, model.device)
    x = images.to(model.device, non_blocking=True)
    net = model.net
    if resolved != "fp32":
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(False):  # parameters stay normal tensors (gradient methods)
            net.to(memory_format=torch.channels_last)
    with autocast(resolved, model.device):
        if isinstance(net, CamNet):
            logits, maps = net.forward_with_maps(x)
            return logits.float().cpu(), maps.float().cpu()
        return net(x).float().cpu(), None


class _Files(TorchDataset[torch.Tensor]):
    def __init__(
        self, paths: Sequence[Path], size: int, mean: tuple[float, ...], std: tuple[float, ...]
    ):
        self.paths, self.size, self.mean, self.std = list(paths), size, mean, std

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_model_tensor(load_image_file(self.paths[index]), self.size, self.mean, self.std)


@dataclass(frozen=True)
class ExplainedFiles:
    """Predictions and maps of a list of image files, row-aligned with the files.

    Attributes:
        logits: float32 ``(N, K)``, from the same forward pass as the CAM maps.
        maps: method name → float16 ``(N, K, h, w)``.
        seconds: method name → wall time spent computing its maps.
    """

    logits: np.ndarray
    maps: dict[str, np.ndarray]
    seconds: dict[str, float]


def load_images(
    model: LoadedModel, paths: Sequence[Path], batch_size: int = 64, num_workers: int | None = None
) -> DataLoader[torch.Tensor]:
    """A loader of normalised model inputs ``(B, 3, S, S)`` decoded through the safe intake path.

    Args:
        model: its card gives the size and normalisation.
        paths: image files, in order (never shuffled).
        batch_size: images per batch.
        num_workers: decoding workers (``None``: one per core, at most 4; none for one batch).
    """
    card = model.card
    workers = num_workers if num_workers is not None else min(4, torch.get_num_threads())
    return DataLoader(
        _Files(paths, card.image_size, card.mean, card.std),
        batch_size=batch_size,
        num_workers=workers if len(paths) > batch_size else 0,
        pin_memory=model.device.type == "cuda",
    )


def explain_files(
    model: LoadedModel,
    paths: Sequence[Path],
    methods: Sequence[str] = ("cam",),
    layer: str = DEFAULT_LAYER,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
    precision: str = "fp32",
) -> ExplainedFiles:
    """Run the model and every requested explanation method over image files in batches.

    Each image is decoded once; logits and exact CAM come from one forward pass, the other
    methods get the same batch.

    Args:
        model: a loaded model.
        paths: image files, read through the safe image-intake path.
        methods: registry names (:data:`cam_core.methods.METHODS`).
        layer: the layer the gradient and score methods read (exact CAM always reads the body).
        batch_size: images per forward pass.
        num_workers: DataLoader workers decoding images (``None``: one per core, at most 4).
        progress: optional callback (message, fraction done).
        precision: of the forward pass that gives logits and exact CAM (``auto``, ``fp32``,
            ``bf16``, ``fp16``); the other methods run in fp32.

    Returns:
        Logits ``(N, K)`` and each method's maps ``(N, K, h, w)``.

    Raises:
        MethodError: an unknown method, or one that does not apply to the model or layer.
    """
    chosen = {name: get_method(name) for name in methods}
    for method in chosen.values():
        reason = method.applies_to(model.net)
        if reason is not None:
            raise MethodError(f"{method.title} does not apply to this model: {reason}")
    all_logits: list[np.ndarray] = []
    parts: dict[str, list[np.ndarray]] = {name: [] for name in chosen}
    seconds = dict.fromkeys(chosen, 0.0)
    with ConsoleProgress("class maps", len(paths), "images") as bar:
        for images in load_images(model, paths, batch_size, num_workers):
            start = time.perf_counter()
            logits, cam = cams_for_batch(model, images, precision)
            all_logits.append(logits.numpy())
            if "cam" in chosen and cam is not None:
                seconds["cam"] += time.perf_counter() - start
                parts["cam"].append(cam.numpy().astype(np.float16))
            for name, method in chosen.items():
                if name == "cam":
                    continue
                start = time.perf_counter()
                maps = method.explain(model.net, images, method.layer_for(layer))
                parts[name].append(maps.numpy().astype(np.float16))
                seconds[name] += time.perf_counter() - start
            bar.update(len(images))
            if progress is not None:
                progress("computing maps", bar.done / max(1, len(paths)))
    n_classes = len(model.card.classes)
    if not all_logits:
        empty = np.zeros((0, n_classes, 1, 1), np.float16)
        return ExplainedFiles(
            np.zeros((0, n_classes), np.float32), dict.fromkeys(chosen, empty), seconds
        )
    return ExplainedFiles(
        logits=np.concatenate(all_logits),
        maps={name: np.concatenate(chunks) for name, chunks in parts.items()},
        seconds=seconds,
    )


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
