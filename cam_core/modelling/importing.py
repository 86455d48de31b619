"""Import a classifier trained elsewhere into a model folder, without ever unpickling.

Weights are read as safetensors, or with ``torch.load(weights_only=True)``, whose restricted
unpickler refuses any object but tensors and plain containers, so a pickle payload disguised
as ``.pth`` is refused before it can run. The result is a normal model folder
(``model.safetensors`` + ``model.json``) with the provenance of the weights.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from cam_core.errors import ImportModelError, first_line
from cam_core.methods import DEFAULT_LAYER, METHODS
from cam_core.methods.base import resolve_layer
from cam_core.methods.tokens import token_layout
from cam_core.modelling.architectures import (
    body_channels,
    build_classifier,
    layer_grid,
    to_classifier,
)
from cam_core.modelling.model_files import IMAGENET_MEAN, IMAGENET_STD, ModelCard, save_model
from cam_core.storage import folder_lock

__all__ = ["ImportConfig", "import_model", "read_weights"]

log = logging.getLogger(__name__)

_SAVE_HINT = (
    "save the weights instead: torch.save(model.state_dict(), 'weights.pth'), or "
    "learn.save('name') in fastai and import with --fastai"
)


@dataclass(frozen=True)
class ImportConfig:
    """What to import and how the model expects its input.

    Attributes:
        arch: torchvision model name, or ``timm:<name>``.
        weights: ``.safetensors``, or a ``.pth``/``.pt`` state dict (a fastai ``learn.save``
            file with ``fastai=True``).
        classes: class names in the order of the model's outputs.
        image_size: side of the square input.
        mean, std: input normalisation (ImageNet's by default).
        layer: the layer the gradient methods read by default; empty: the model's own default
            (the body's output, the last feature maps; for a ViT the last block's first norm).
        fastai: the weights are fastai's ``vision_learner(arch)`` model.
    """

    arch: str
    weights: Path
    classes: tuple[str, ...]
    image_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    layer: str = ""
    fastai: bool = False

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ImportModelError("name at least two classes (--classes a,b or --classes-file)")
        if len(set(self.classes)) != len(self.classes):
            raise ImportModelError("the class names must be distinct")
        if self.image_size < 16:
            raise ImportModelError(f"image size {self.image_size} is too small")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ImportModelError("--mean and --std need three values each, std above 0")


def _refusal(path: Path, why: str) -> ImportModelError:
    return ImportModelError(f"{path.name} is refused: {why}; {_SAVE_HINT}")


def read_weights(path: Path, fastai: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, read without executing anything.

    Raises:
        ImportModelError: missing or unreadable file, a file that needs pickle (fastai's
            ``export.pkl``, a whole pickled model), or one that holds no state dict.
    """
    if not path.is_file():
        raise ImportModelError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        try:
            return dict(load_safetensors(path.read_bytes()))
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise ImportModelError(f"{path.name} is not a valid safetensors file ({exc})") from None
    try:
        with torch.serialization.safe_globals(_fastai_globals() if fastai else []):
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        if "fastcore.foundation.L" in str(exc) and not fastai:
            raise ImportModelError(
                f"{path.name} looks like a file from fastai's learn.save; add --fastai"
            ) from None
        if _pickled(path):
            raise _refusal(
                path, "it holds Python objects that only pickle can load, which could run code"
            ) from None
        raise _refusal(path, "it is not a PyTorch weights file") from None
    # The decoder meets arbitrary bytes (a text file saved as .pt, a cut-off download) with
    # all of these (LookupError, AssertionError and struct.error included, found by feeding
    # it noise): each means "not a weights file", said in one line, never a traceback.
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        AttributeError,
        LookupError,
        TypeError,
        AssertionError,
        struct.error,
    ) as exc:
        raise _refusal(path, f"it is not a PyTorch weights file ({first_line(exc)})") from None
    return _state_dict(path, payload, fastai)


def _pickled(path: Path) -> bool:
    """A torch zip archive or a raw pickle stream (PROTO opcode first), by its first bytes."""
    with path.open("rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _fastai_globals() -> list[Any]:
    """The one class besides tensors that ``learn.save`` writes: fastcore's list ``L`` in the
    optimizer state. Allowing it lets weights-only loading read the file; ``L`` is a plain
    container whose rebuilding runs none of the file's code."""
    try:
        from fastcore.foundation import L
    except ImportError:
        return []
    return [L]


def _state_dict(path: Path, payload: Any, fastai: bool) -> dict[str, torch.Tensor]:
    if isinstance(payload, dict) and not fastai and "model" in payload and "opt" in payload:
        raise ImportModelError(f"{path.name} looks like a fastai learn.save file; add --fastai")
    if isinstance(payload, dict):
        # fastai's learn.save and many training scripts keep the weights under "model";
        # Lightning and others under "state_dict".
        for key in ("model", "state_dict"):
            if isinstance(payload.get(key), dict):
                payload = payload[key]
                break
        else:
            if fastai and "model" not in payload and not _all_tensors(payload):
                raise _refusal(path, "it is not a fastai learn.save file (no 'model' entry)")
    if not isinstance(payload, dict) or not payload or not _all_tensors(payload):
        raise _refusal(path, "it holds no state dict (a mapping of names to tensors)")
    state = {str(k): v for k, v in payload.items()}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _all_tensors(mapping: dict[Any, Any]) -> bool:
    return all(isinstance(v, torch.Tensor) for v in mapping.values())


def _classifier_key(model: nn.Module) -> str | None:
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    return f"{last}.weight" if last is not None else None


def check_fit(model: nn.Module, state: dict[str, torch.Tensor], arch: str, n_classes: int) -> None:
    """Refuse weights that do not fit ``model``, naming the first mismatch.

    Raises:
        ImportModelError: wrong number of classes, a missing, unexpected or misshapen tensor.
    """
    expected = model.state_dict()
    head_key = _classifier_key(model)
    if head_key in state and head_key in expected:
        outputs = state[head_key].shape[0]
        if outputs != n_classes and state[head_key].shape[1:] == expected[head_key].shape[1:]:
            raise ImportModelError(
                f"the weights' classifier has {outputs} outputs but {n_classes} classes were "
                "named; pass one class name per output, in order"
            )
    for key, tensor in expected.items():
        if key not in state:
            raise ImportModelError(
                f"the weights do not fit {arch}: {key!r} is missing from the file "
                f"(first of {sum(k not in state for k in expected)} missing)"
            )
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ImportModelError(
                f"the weights do not fit {arch}: {key!r} has shape {tuple(state[key].shape)} "
                f"in the file, {tuple(tensor.shape)} in {arch}"
            )
    extra = [key for key in state if key not in expected]
    if extra:
        raise ImportModelError(
            f"the weights do not fit {arch}: the file has {extra[0]!r}, which {arch} does not "
            f"(first of {len(extra)} unexpected)"
        )


def import_model(cfg: ImportConfig, out: Path) -> ModelCard:
    """Build ``cfg.arch``, load the weights, check them and write a model folder to ``out``.

    Returns:
        The saved card; ``provenance`` says where the weights came from and which methods
        apply (with the reason for each that does not).

    Raises:
        ImportModelError: unsafe, unreadable or unfitting weights; an unsupported architecture.
        MethodError: ``cfg.layer`` is not a layer of the model.
        AlreadyRunningError: another process writes ``out``.
    """
    state = read_weights(cfg.weights, cfg.fastai)
    model = build_classifier(cfg.arch, len(cfg.classes), cfg.fastai, cfg.image_size)
    check_fit(model, state, cfg.arch, len(cfg.classes))
    model.load_state_dict(state, strict=True)
    net, cam_reason = to_classifier(model, cfg.fastai, check_size=cfg.image_size)
    layout = token_layout(net)
    layer = cfg.layer or (layout.default_layer if layout is not None else DEFAULT_LAYER)
    resolve_layer(net, layer)
    nf = body_channels(net, cfg.image_size)
    grid = layer_grid(net, layer, cfg.image_size)
    methods = {}
    for name, method in METHODS.items():
        reason = method.applies_to(net)
        methods[name] = "applies" if reason is None else reason
    provenance = {
        "source": str(cfg.weights.resolve()),
        "source_sha256": hashlib.sha256(cfg.weights.read_bytes()).hexdigest(),
        "arch": cfg.arch,
        "fastai": cfg.fastai,
        "head": cam_reason or "global average pooling + one linear layer (exact CAM)",
        "methods": methods,
        "layer_grid": list(grid),
        **({"tokens": layout.describe()} if layout is not None else {}),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    card = ModelCard(
        arch=cfg.arch,
        n_features=nf,
        classes=tuple(cfg.classes),
        image_size=cfg.image_size,
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        layer=layer,
        provenance=provenance,
    )
    with folder_lock(out, "import"):
        saved = save_model(net, card, out)
    log.info(
        "imported %s (%d classes) from %s: %s",
        cfg.arch,
        len(cfg.classes),
        cfg.weights.name,
        "exact CAM and gradient methods" if cam_reason is None else "gradient methods only",
    )
    return saved
