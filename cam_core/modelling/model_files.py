"""Saved models: a folder with ``model.safetensors`` and ``model.json``, never a pickle.

``model.json`` is written last and carries the sha256 of the weights, so a folder is either
complete and verified or refused with a message that says what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from cam_core import __version__
from cam_core.errors import ImportModelError, ModelFileError, first_line
from cam_core.modelling.models import CamNet, Classifier, build_body, default_device
from cam_core.storage import commit_files, read_json_object, write_temp_bytes

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODEL_FORMAT",
    "LoadedModel",
    "ModelCard",
    "library_versions",
    "load_model",
    "normalisation_recorded",
    "save_model",
]

log = logging.getLogger(__name__)

MODEL_FORMAT = 2
"""2: cards may describe imported models (``provenance``, ``layer``); format-1 cards still load."""
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model.json"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to rebuild and describe a trained model (the ``model.json``)."""

    arch: str
    n_features: int
    classes: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: str = "center-crop"
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    weights_sha256: str = ""
    format_version: int = MODEL_FORMAT
    layer: str = "body"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def imported(self) -> bool:
        """Trained elsewhere and imported (see :mod:`cam_core.modelling.importing`)."""
        return bool(self.provenance)


_REQUIRED = ("arch", "n_features", "classes", "image_size", "weights_sha256", "format_version")


@dataclass(frozen=True)
class LoadedModel:
    """A verified model ready for inference (eval mode, on ``device``)."""

    card: ModelCard
    net: Classifier
    device: torch.device
    folder: Path


def library_versions() -> dict[str, str]:
    """Versions recorded in every model and artifact manifest."""
    import torchvision

    versions = {
        "cam_core": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    try:
        import fastai

        versions["fastai"] = fastai.__version__
    except ImportError:
        log.debug("fastai not installed; not recorded")
    return versions


def save_model(net: nn.Module, card: ModelCard, folder: Path) -> ModelCard:
    """Write weights (safetensors) then ``model.json``; returns the card with hash and date.

    Args:
        net: the trained model; its state dict is copied to CPU.
        card: description without hash/date (those are filled in here).
        folder: created if needed; an existing model there is replaced atomically.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    blob = save_safetensors(state)
    final = ModelCard(
        **{
            **asdict(card),
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": library_versions(),
        }
    )
    card_bytes = json.dumps(asdict(final), indent=2, sort_keys=True).encode("utf-8")
    # Weights and card are replaced together, so a crash never pairs a card with other weights.
    commit_files(
        folder,
        {
            WEIGHTS_FILE: write_temp_bytes(folder / WEIGHTS_FILE, blob),
            CARD_FILE: write_temp_bytes(folder / CARD_FILE, card_bytes),
        },
    )
    log.info("saved model to %s (sha256 %s)", folder, final.weights_sha256[:12])
    return final


def read_card(folder: Path) -> ModelCard:
    """Read and validate ``model.json`` without touching the weights.

    Raises:
        ModelFileError: missing folder or file, bad JSON, missing fields, newer format.
    """
    path = folder / CARD_FILE
    if not folder.is_dir():
        raise ModelFileError(f"model folder {folder} does not exist; train one first")
    raw = read_json_object(
        path, ModelFileError, "this folder holds no saved model", "retrain or restore it"
    )
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ModelFileError(f"{path} lacks {', '.join(missing)}; it is damaged or not ours")
    if not isinstance(raw["format_version"], int) or raw["format_version"] > MODEL_FORMAT:
        raise ModelFileError(
            f"{path} has format {raw['format_version']!r}, newer than this cam_core "
            f"understands ({MODEL_FORMAT}); upgrade cam_core"
        )
    known = set(ModelCard.__dataclass_fields__)
    try:
        card = ModelCard(**{k: v for k, v in raw.items() if k in known})
        return ModelCard(
            **{
                **asdict(card),
                "classes": tuple(str(c) for c in card.classes),
                "mean": tuple(float(m) for m in card.mean),
                "std": tuple(float(s) for s in card.std),
                "image_size": int(card.image_size),
                "n_features": int(card.n_features),
                "layer": str(card.layer),
                "provenance": dict(card.provenance),
            }
        )
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} has a field of the wrong type ({exc})") from None


def normalisation_recorded(folder: Path) -> bool:
    """Whether ``model.json`` states the input normalisation (``mean`` and ``std``) rather
    than leaving the ImageNet defaults to be assumed (hand-written or very old cards).

    Raises:
        ModelFileError: the card is missing or not JSON.
    """
    raw = read_json_object(
        folder / CARD_FILE, ModelFileError, "this folder holds no saved model", "retrain it"
    )
    return "mean" in raw and "std" in raw


def _rebuild(card: ModelCard) -> Classifier:
    """An untrained network of the card's architecture, ready for the saved state dict."""
    if not card.imported:
        return CamNet(build_body(card.arch), len(card.classes), nf=card.n_features)
    from cam_core.modelling.architectures import build_classifier, to_classifier

    fastai = bool(card.provenance.get("fastai", False))
    model = build_classifier(card.arch, len(card.classes), fastai, card.image_size)
    net, _ = to_classifier(model, fastai)
    return net


def load_model(folder: Path, device: str | torch.device | None = None) -> LoadedModel:
    """Load a saved model, checking the weights' sha256 before parsing them.

    Weights are read only as safetensors (no pickle, no code execution).

    Raises:
        ModelFileError: any missing, truncated, modified or incompatible file.
    """
    card = read_card(folder)
    weights = folder / WEIGHTS_FILE
    try:
        blob = weights.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{weights} is missing; the model folder is incomplete") from None
    except OSError as exc:
        raise ModelFileError(f"{weights} cannot be read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card.weights_sha256:
        raise ModelFileError(
            f"{weights} does not match the sha256 in {CARD_FILE} (truncated or modified); "
            "retrain or restore the folder"
        )
    try:
        state = load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{weights} is not a valid safetensors file ({exc})") from None
    try:
        net = _rebuild(card)
        net.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError, ImportModelError) as exc:
        raise ModelFileError(
            f"{weights} does not fit architecture {card.arch!r} ({first_line(exc)})"
        ) from None
    target = default_device(str(device) if device is not None else None)
    net.to(target).eval()
    net.to(memory_format=torch.channels_last)  # see cam_core.methods.layout
    return LoadedModel(card=card, net=net, device=target, folder=folder)
