"""Predictions with every class map for user images (files or URLs), batched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cam_core.analysis.cams import explain_batch
from cam_core.analysis.findings import FamiliarGround
from cam_core.intake.fetch import FetchConfig, fetch_image, is_url
from cam_core.intake.images import load_image_file, square_resize, to_model_tensor
from cam_core.methods import DEFAULT_LAYER, checked_methods
from cam_core.methods.budget import DEFAULT_CLASSES_PER_IMAGE, every_class, held_classes
from cam_core.modelling.model_files import LoadedModel

__all__ = ["ImagePlacement", "Prediction", "load_input", "placed", "predict_images"]


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image.

    Attributes:
        source: file path, URL or upload name.
        classes: class names in output order.
        logits: ``(K,)``.
        probs: ``(K,)`` softmax of the logits.
        maps: ``(K, h, w)`` float32, one map per class; for exact CAM
            ``maps.mean((1, 2)) == logits``; all NaN for a class outside the class budget of
            another method (:meth:`has_map`).
        method: the explanation method that made the maps.
        view: the model-input view of the image (square crop at the model's size), which the
            maps line up with.
        features: ``(C,)`` the image's pooled features (the head's input).
        placement: familiarity and map position against an analysis of the model
            (:meth:`with_placement`), or ``None``.
    """

    source: str
    classes: tuple[str, ...]
    logits: np.ndarray
    probs: np.ndarray
    maps: np.ndarray
    view: Image.Image
    method: str
    features: np.ndarray
    placement: ImagePlacement | None = None

    def has_map(self, k: int) -> bool:
        """Whether the method computed a map of class ``k`` for this image."""
        return not bool(np.isnan(self.maps[k]).all())

    @property
    def pred(self) -> str:
        """The predicted class."""
        return self.classes[int(np.argmax(self.probs))]

    def to_json(self) -> dict[str, object]:
        """``{"source", "pred", "method", "probs"}`` for printing, with
        ``familiarity_percentile`` (share of validation images, %, more familiar than this
        one) and ``unfamiliar`` where the prediction was placed against an analysis."""
        result: dict[str, object] = {
            "source": self.source,
            "pred": self.pred,
            "method": self.method,
            "probs": {c: round(float(p), 6) for c, p in zip(self.classes, self.probs, strict=True)},
        }
        if self.placement is not None:
            result["familiarity_percentile"] = round(self.placement.less_familiar_than, 2)
            result["unfamiliar"] = self.placement.unfamiliar
        return result


@dataclass(frozen=True)
class ImagePlacement:
    """Where one image stands against an analysis of its model.

    Attributes:
        familiarity: 0..1, higher = more like the training images.
        less_familiar_than: percentage of validation images more familiar than this image.
        unfamiliar: beyond the analysis's threshold: the model's answer may mean nothing.
        coords: ``(2,)`` on the analysis's 2-D map, or ``None``.
    """

    familiarity: float
    less_familiar_than: float
    unfamiliar: bool
    coords: tuple[float, float] | None


def placed(predictions: Sequence[Prediction], ground: FamiliarGround) -> list[Prediction]:
    """The predictions with their familiarity and map position against ``ground``."""
    if not predictions:
        return []
    found = ground.place(np.stack([p.features for p in predictions]))
    return [
        replace(
            prediction,
            placement=ImagePlacement(
                familiarity=float(found.familiarity[i]),
                less_familiar_than=float(found.less_familiar_than[i]),
                unfamiliar=bool(found.unfamiliar[i]),
                coords=None
                if found.coords is None
                else (float(found.coords[i, 0]), float(found.coords[i, 1])),
            ),
        )
        for i, prediction in enumerate(predictions)
    ]


def load_input(source: str, fetch_cfg: FetchConfig | None = None) -> Image.Image:
    """Read one input given on the command line: an http(s) URL or a file path.

    Raises:
        UrlRejectedError, ImageRejectedError.
    """
    if is_url(source):
        return fetch_image(source, fetch_cfg or FetchConfig())
    return load_image_file(Path(source))


def predict_images(
    model: LoadedModel,
    images: Sequence[tuple[str, Image.Image]],
    method: str,
    batch_size: int = 32,
    layer: str = DEFAULT_LAYER,
    precision: str = "auto",
    per_image: int | None = DEFAULT_CLASSES_PER_IMAGE,
) -> list[Prediction]:
    """Predict a list of ``(source, RGB image)`` pairs in batches, with one method's maps.

    Args:
        model: a loaded model.
        images: ``(source, image)`` pairs.
        method: explanation method (registry name, e.g.
            :func:`cam_core.methods.default_method` of the model).
        batch_size: images per forward pass.
        layer: the layer gradient and score methods read.
        precision: of the logits and of maps that come out of their forward pass
            (:mod:`cam_core.modelling.precision`; ``auto``: bf16 on a CPU with native bf16,
            fp16 on CUDA, else fp32).
        per_image: the class budget of methods other than exact CAM: maps of the prediction
            and the next most probable classes, this many (``None``: every class).

    Returns:
        One :class:`Prediction` per input, in order.

    Raises:
        MethodError: an unknown method or one that does not apply.
    """
    chosen = checked_methods(model.net, (method,))
    card = model.card
    results: list[Prediction] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch = torch.stack(
            [to_model_tensor(img, card.image_size, card.mean, card.std) for _, img in chunk]
        )
        explained = explain_batch(model, batch, chosen, layer, precision, None, per_image)
        logits, maps = explained.logits, explained.maps[method].numpy()
        slots = held_classes(explained.classes, maps.shape[1], len(card.classes))
        features = explained.features.numpy()
        probs = torch.softmax(logits, dim=1).numpy()
        for row, (source, img) in enumerate(chunk):
            results.append(
                Prediction(
                    source=source,
                    classes=tuple(card.classes),
                    logits=logits[row].numpy(),
                    probs=probs[row],
                    maps=every_class(
                        maps[row], None if slots is None else slots[row], len(card.classes)
                    ),
                    view=square_resize(img, card.image_size),
                    method=method,
                    features=features[row],
                )
            )
    return results
