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

from cam_core.evaluation.duplicates import SIGNATURE_SCALES, image_signatures
from cam_core.evaluation.slices import PROPERTY_COLUMNS, pixel_properties
from cam_core.intake.images import load_image_file, to_model_tensor
from cam_core.methods import DEFAULT_LAYER, ExplanationMethod, checked_methods, explain_methods
from cam_core.methods.budget import DEFAULT_CLASSES_PER_IMAGE, budget_classes, held_classes
from cam_core.methods.layout import fast_layout
from cam_core.methods.tokens import feature_vector, token_layout
from cam_core.modelling.model_files import LoadedModel
from cam_core.modelling.precision import autocast, resolve_precision
from cam_core.progress import ConsoleProgress, ProgressFn

__all__ = [
    "FEATURE_LAYER",
    "BatchExplanation",
    "ExplainedFiles",
    "explain_batch",
    "explain_files",
    "load_images",
]

log = logging.getLogger(__name__)

FEATURE_LAYER = DEFAULT_LAYER
"""Whose output gives an image's feature vector: the body, whose output the head reads (for a
CAM head, the layer exact CAM reads; for a ViT, its class token)."""


@dataclass(frozen=True)
class BatchExplanation:
    """Logits and each method's maps of one batch.

    Attributes:
        logits: float32 ``(N, K)`` on the CPU.
        features: float32 ``(N, C)`` on the CPU: the pooled output of the model's feature
            body (the classifier head's input), from the same forward pass as the logits.
        signatures: float16 ``(N, scales, d)``: the inputs' near-duplicate signatures
            (:func:`cam_core.evaluation.duplicates.image_signatures`).
        properties: float32 ``(N, 4)``: brightness, contrast, colourfulness, sharpness of the
            inputs (:func:`cam_core.evaluation.slices.pixel_properties`).
        maps: method name → float32 ``(N, S, h, w)`` on the CPU: every class (``S = K``)
            for exact CAM and when ``classes`` is ``None``, else the budget's classes.
        seconds: method name → wall time spent on its maps.
        classes: int64 ``(N, S)`` the class of each slot of the budgeted methods' maps
            (:mod:`cam_core.methods.budget`), ``None`` when they hold every class.
    """

    logits: torch.Tensor
    features: torch.Tensor
    signatures: np.ndarray
    properties: np.ndarray
    maps: dict[str, torch.Tensor]
    seconds: dict[str, float]
    classes: np.ndarray | None = None


def explain_batch(
    model: LoadedModel,
    images: torch.Tensor,
    methods: Sequence[ExplanationMethod],
    layer: str = DEFAULT_LAYER,
    precision: str = "fp32",
    truth: np.ndarray | None = None,
    per_image: int | None = DEFAULT_CLASSES_PER_IMAGE,
) -> BatchExplanation:
    """Logits and every method's maps of a batch: the one path of the analysis and ``predict``.

    The forward pass that gives the logits runs once, in ``precision``; a method whose maps
    come out of that pass (``shares_forward``, e.g. exact CAM) takes them from it, for every
    class. Every other method computes its own in fp32, for the class budget: the true class,
    the prediction and the next most probable, ``per_image`` in all.

    Args:
        model: a loaded model.
        images: normalised images ``(N, 3, S, S)`` on any device.
        methods: methods that apply to the model (:func:`cam_core.methods.checked_methods`).
        layer: the layer the user asked for (each method reads its ``layer_for`` of it).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (:mod:`cam_core.modelling.precision`).
        truth: ``(N,)`` true class per image (``-1`` unknown), or ``None`` (user photos).
        per_image: classes per image for the budgeted methods; ``None`` for every class.

    Returns:
        Logits, pooled features and maps on the CPU, float32, and the budget's classes.

    Raises:
        MethodError: a method does not apply to the model or layer.
    """
    resolved = resolve_precision(precision, model.device)
    net = model.net
    x = fast_layout(images.to(model.device, non_blocking=True))
    sharing = next((m for m in methods if m.shares_forward), None)
    maps: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    # The body and the head are called one after the other (that is the classifier's forward
    # pass) so the body's output is kept without a forward hook: hooks live on the module,
    # which every dashboard session shares, and would catch other threads' batches.
    with torch.inference_mode(), autocast(resolved, model.device):
        body_output = net.get_submodule(FEATURE_LAYER)(x)
        if sharing is not None:
            logits, shared = sharing.explain_from_features(net, body_output)
            maps[sharing.name] = shared.float().cpu()
        else:
            logits = net.get_submodule("head")(body_output)
        features = feature_vector(body_output, token_layout(net)).float().cpu()
    logits = logits.float().cpu()
    if sharing is not None:
        seconds[sharing.name] = time.perf_counter() - start
    others = [method for method in methods if method is not sharing]
    classes = budget_classes(logits.numpy(), truth, per_image) if others else None
    own_maps, own_seconds = explain_methods(
        others, net, images, layer, None if classes is None else torch.from_numpy(classes)
    )
    maps.update(own_maps)
    seconds.update(own_seconds)
    card = model.card
    mean = torch.tensor(card.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(card.std, dtype=torch.float32).view(1, -1, 1, 1)
    pixels = (images.detach().float().cpu() * std + mean).clamp(0, 1)
    return BatchExplanation(
        logits,
        features,
        image_signatures(images),
        pixel_properties(pixels),
        {method.name: maps[method.name] for method in methods},
        seconds,
        classes,
    )


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
        features: float16 ``(N, C)``, the pooled head input from that pass.
        signatures: float16 ``(N, scales, d)``, the near-duplicate signatures of the inputs.
        properties: float32 ``(N, 4)``, the inputs' image properties
            (:data:`cam_core.evaluation.slices.PROPERTY_COLUMNS`).
        maps: method name → float16 ``(N, S, h, w)`` (every class for exact CAM and without
            a budget, else the budget's classes).
        seconds: method name → wall time spent computing its maps.
        classes: int64 ``(N, S)`` the class of each slot of the budgeted methods' maps, or
            ``None`` when every method holds every class.
    """

    logits: np.ndarray
    features: np.ndarray
    signatures: np.ndarray
    properties: np.ndarray
    maps: dict[str, np.ndarray]
    seconds: dict[str, float]
    classes: np.ndarray | None = None

    def classes_of(self, name: str) -> np.ndarray | None:
        """The slot classes of ``name``'s maps, ``None`` when they hold every class."""
        return held_classes(self.classes, self.maps[name].shape[1], self.logits.shape[1])


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
    methods: Sequence[str],
    layer: str = DEFAULT_LAYER,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: ProgressFn | None = None,
    precision: str = "fp32",
    truth: np.ndarray | None = None,
    per_image: int | None = DEFAULT_CLASSES_PER_IMAGE,
    what: str = "class maps",
) -> ExplainedFiles:
    """Run the model and every requested explanation method over image files in batches.

    Each image is decoded once and goes through :func:`explain_batch`.

    Args:
        model: a loaded model.
        paths: image files, read through the safe image-intake path.
        methods: registry names (:data:`cam_core.methods.METHODS`).
        layer: the layer the methods read (exact CAM always reads the body).
        batch_size: images per forward pass.
        num_workers: DataLoader workers decoding images (``None``: one per core, at most 4).
        progress: optional callback (message, fraction done).
        precision: of the forward pass that gives the logits (``auto``, ``fp32``, ``bf16``,
            ``fp16``), and of the maps that come out of it; the other methods run in fp32.
        truth: ``(N,)`` true class index per file (``-1`` unknown), or ``None``.
        per_image: the class budget of the methods other than exact CAM (``None``: every
            class; :mod:`cam_core.methods.budget`).
        what: what the progress bar says is being computed.

    Returns:
        Logits ``(N, K)``, each method's maps ``(N, S, h, w)`` and the budget's classes.

    Raises:
        MethodError: an unknown method, or one that does not apply to the model or layer.
    """
    chosen = checked_methods(model.net, methods)
    all_logits: list[np.ndarray] = []
    all_features: list[np.ndarray] = []
    all_signatures: list[np.ndarray] = []
    all_properties: list[np.ndarray] = []
    all_classes: list[np.ndarray] = []
    parts: dict[str, list[np.ndarray]] = {method.name: [] for method in chosen}
    seconds = dict.fromkeys(parts, 0.0)
    with ConsoleProgress(what, len(paths), "images") as bar:
        for images in load_images(model, paths, batch_size, num_workers):
            start = bar.done
            batch_truth = None if truth is None else truth[start : start + len(images)]
            batch = explain_batch(model, images, chosen, layer, precision, batch_truth, per_image)
            if batch.classes is not None:
                all_classes.append(batch.classes)
            all_logits.append(batch.logits.numpy())
            all_features.append(batch.features.numpy().astype(np.float16))
            all_signatures.append(batch.signatures)
            all_properties.append(batch.properties)
            for name, maps in batch.maps.items():
                parts[name].append(maps.numpy().astype(np.float16))
                seconds[name] += batch.seconds[name]
            bar.update(len(images))
            if progress is not None:
                progress(f"{what} ({bar.done}/{len(paths)} images)", bar.done / max(1, len(paths)))
    n_classes = len(model.card.classes)
    if not all_logits:
        empty = np.zeros((0, n_classes, 1, 1), np.float16)
        return ExplainedFiles(
            np.zeros((0, n_classes), np.float32),
            np.zeros((0, model.card.n_features), np.float16),
            np.zeros((0, len(SIGNATURE_SCALES), 1), np.float16),
            np.zeros((0, len(PROPERTY_COLUMNS)), np.float32),
            dict.fromkeys(parts, empty),
            seconds,
        )
    return ExplainedFiles(
        logits=np.concatenate(all_logits),
        features=np.concatenate(all_features),
        signatures=np.concatenate(all_signatures),
        properties=np.concatenate(all_properties),
        maps={name: np.concatenate(chunks) for name, chunks in parts.items()},
        seconds=seconds,
        classes=np.concatenate(all_classes) if all_classes else None,
    )
