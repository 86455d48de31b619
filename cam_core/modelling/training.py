"""The tutorial's two training stages, made general (fastai under the hood).

Stage 1 trains the body with a standard head (``vision_learner`` for ResNets, a small custom
CNN for the demo). Stage 2 keeps the body, swaps in the bias-free CAM head and trains again.
Only the stage-2 model is saved, as safetensors, so the app never unpickles a ``Learner``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import urllib.error
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cam_core.data.sources import Dataset, Sample
from cam_core.errors import DownloadError, TrainingError
from cam_core.intake.images import load_image_file
from cam_core.methods.layout import fast_layout
from cam_core.modelling.model_files import IMAGENET_MEAN, IMAGENET_STD, ModelCard, save_model
from cam_core.modelling.models import (
    ARCHITECTURES,
    DEMO_CNNS,
    CamNet,
    build_body,
    default_device,
    num_features,
)
from cam_core.progress import ProgressFn, interactive
from cam_core.storage import folder_lock

__all__ = ["TrainConfig", "train_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults are the tutorial's (ResNet34, 512 px, batch 32, 1 + 5 epochs).

    Attributes:
        arch: one of :data:`cam_core.modelling.models.ARCHITECTURES`.
        image_size: side of the square model input.
        batch_size: images per batch.
        epochs1: stage-1 epochs (standard head).
        epochs2: stage-2 epochs (CAM head).
        pretrained: start from ImageNet weights (``fine_tune``); else one-cycle from scratch.
        lr: learning rate; ``None`` picks 2e-3 for fine-tuning and 3e-3 from scratch.
        head_lr_mult: from scratch, stage 2 trains the new CAM head at ``lr * head_lr_mult``
            and the body at ``lr`` (fastai's discriminative learning rates). Fine-tuning keeps
            fastai's own split and ignores it.
        seed: seeds every random number generator.

        num_workers: DataLoader workers; ``None`` picks one per core, at most 4.
        device: ``"cuda"``, ``"cpu"`` or ``None`` for CUDA when present.
    """

    arch: str = "resnet34"
    image_size: int = 512
    batch_size: int = 32
    epochs1: int = 1
    epochs2: int = 5
    pretrained: bool = True
    lr: float | None = None
    head_lr_mult: float = 1.0
    seed: int = 42
    num_workers: int | None = None
    device: str | None = None

    @property
    def recipe(self) -> str:
        """In words: the tutorial's two stages, or the CAM head trained from the start."""
        head = (
            f" (the new head at {self.head_lr_mult:g}x the body's learning rate)"
            if self.head_lr_mult != 1.0 and not self.pretrained
            else ""
        )
        if self.epochs1:
            return (
                f"two stages (the tutorial's): {self.epochs1} epoch(s) with a standard head, then "
                f"{self.epochs2} with the CAM head{head}"
            )
        return f"one stage: the CAM head trained from the start for {self.epochs2} epochs{head}"

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}"
            )
        for name in ("image_size", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.epochs1 < 0 or self.epochs2 < 1:
            raise ValueError("epochs1 must be >= 0 and epochs2 >= 1")
        if not self.head_lr_mult > 0:
            raise ValueError(f"head_lr_mult must be positive, got {self.head_lr_mult}")


def _sample_image(sample: Sample) -> Any:
    from fastai.vision.all import PILImage

    return PILImage.create(load_image_file(sample.path))


def _sample_label(sample: Sample) -> str:
    return sample.label


IN_MEMORY_BYTES = 1 << 30
"""Largest decoded training set kept in memory (uint8) instead of decoded every epoch."""


def _decoded(samples: Sequence[Sample], size: int) -> torch.Tensor | None:
    """Every image as uint8 ``(N, 3, S, S)`` when all are already ``S × S`` (then fastai's
    ``Resize`` does nothing to them) and fit in :data:`IN_MEMORY_BYTES`; else ``None``."""
    if len(samples) * 3 * size * size > IN_MEMORY_BYTES:
        return None
    pictures = []
    for sample in samples:
        image = load_image_file(sample.path)
        if image.size != (size, size):
            return None
        pictures.append(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1))
    return torch.stack(pictures) if pictures else None


def _build_dataloaders(data: Dataset, cfg: TrainConfig, device: torch.device) -> Any:
    """fastai's loaders of the split: from images decoded once into memory where they are
    small and already at the model's size (the demo: fastai's per-item pipeline took a third
    of each epoch), else through fastai's ``DataBlock`` (decode and ``Resize`` per item)."""
    workers = cfg.num_workers if cfg.num_workers is not None else min(4, torch.get_num_threads())
    decoded = _decoded(data.samples, cfg.image_size) if workers == 0 else None
    if decoded is not None:
        return _memory_dataloaders(data, decoded, cfg, device)
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        IndexSplitter,
        IntToFloatTensor,
        Normalize,
        Resize,
        TransformBlock,
    )

    block = DataBlock(
        blocks=(
            TransformBlock(type_tfms=_sample_image, batch_tfms=IntToFloatTensor),
            CategoryBlock(vocab=list(data.classes)),
        ),
        get_y=_sample_label,
        splitter=IndexSplitter(list(data.valid_idx)),
        item_tfms=Resize(cfg.image_size),
        batch_tfms=Normalize.from_stats(IMAGENET_MEAN, IMAGENET_STD),
    )
    return block.dataloaders(
        list(data.samples),
        bs=cfg.batch_size,
        num_workers=workers,
        device=device,
        pin_memory=device.type == "cuda",
    )


def _memory_dataloaders(
    data: Dataset, decoded: torch.Tensor, cfg: TrainConfig, device: torch.device
) -> Any:
    """Loaders over decoded uint8 images, with the ``DataBlock`` path's batch transforms, class
    order, shuffling (training only) and dropped last partial training batch."""
    from fastai.vision.all import (
        CrossEntropyLossFlat,
        DataLoaders,
        IntToFloatTensor,
        Normalize,
        TensorCategory,
        TensorImage,
    )

    class Items(list[Any]):
        """Image/label pairs that name their loss, as a ``CategoryBlock`` dataset does (the
        ``Learner`` takes it from the training set)."""

        loss_func = CrossEntropyLossFlat()

    index = {name: k for k, name in enumerate(data.classes)}
    items = [
        (TensorImage(image), TensorCategory(index[sample.label]))
        for image, sample in zip(decoded, data.samples, strict=True)
    ]
    valid = set(data.valid_idx)
    dls = DataLoaders.from_dsets(
        Items(item for i, item in enumerate(items) if i not in valid),
        Items(items[i] for i in data.valid_idx),
        bs=cfg.batch_size,
        device=device,
        after_batch=[IntToFloatTensor(), Normalize.from_stats(IMAGENET_MEAN, IMAGENET_STD)],
    )
    dls.c = len(data.classes)
    return dls


def _cam_splitter(model: CamNet) -> list[list[nn.Parameter]]:
    return [list(model.body.parameters()), list(model.head.parameters())]


def _make_progress_callback(progress: ProgressFn, total_batches: int) -> Any:
    from fastai.callback.core import Callback

    class _ReportProgress(Callback):
        order = 90

        def __init__(self) -> None:
            self.done = 0
            self.stage = ""

        def after_batch(self) -> None:
            self.done += 1
            progress(
                f"{self.stage}: epoch {self.epoch + 1}/{self.n_epoch}",
                min(1.0, self.done / total_batches),
            )

    return _ReportProgress()


def _channels_last_callback() -> Any:
    """Model and every batch in channels-last layout (:mod:`cam_core.modelling.precision`: a
    training step of the demo CNN is 20-25% faster on a CPU); fastai's own ``ChannelsLast``
    converts the model only, and a channels-last model fed contiguous images is slower."""
    from fastai.callback.core import Callback

    class _ChannelsLast(Callback):
        order = -1  # before the other callbacks see the batch

        def before_fit(self) -> None:
            self.learn.model.to(memory_format=torch.channels_last)

        def before_batch(self) -> None:
            self.learn.xb = tuple(fast_layout(x) for x in self.learn.xb)

    return _ChannelsLast()


def _fit(learn: Any, epochs: int, cfg: TrainConfig, lr: float, head_lr_mult: float = 1.0) -> None:
    """fastai's ``fine_tune`` for pretrained bodies, else one cycle; from scratch the last
    parameter group (the head) may learn ``head_lr_mult`` times faster than the body."""
    if cfg.pretrained:
        learn.fine_tune(epochs, base_lr=lr)
    elif head_lr_mult != 1.0:
        learn.fit_one_cycle(epochs, slice(lr, lr * head_lr_mult))
    else:
        learn.fit_one_cycle(epochs, lr)


def _stage1_learner(dls: Any, cfg: TrainConfig, n_classes: int, cbs: list[Any]) -> Any:
    from fastai.vision.all import Learner, accuracy, create_head, vision_learner
    from torchvision import models as tv_models

    if cfg.arch in DEMO_CNNS:
        body = build_body(cfg.arch)
        model = nn.Sequential(body, create_head(num_features(body), n_classes))
        return Learner(dls, model, metrics=accuracy, cbs=cbs)
    try:
        return vision_learner(
            dls,
            getattr(tv_models, cfg.arch),
            pretrained=cfg.pretrained,
            metrics=accuracy,
            normalize=False,
            cbs=cbs,
        )
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"downloading ImageNet weights for {cfg.arch} failed ({reason}); "
            "train from scratch with --no-pretrained"
        ) from None


def _world() -> tuple[int, int]:
    """``(rank, world size)`` under ``accelerate launch``/``torchrun``; ``(0, 1)`` otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _distributed(learn: Any) -> contextlib.AbstractContextManager[Any]:
    """fastai's data-parallel context (Accelerate) when several processes train, else none."""
    if _world()[1] == 1:
        return contextlib.nullcontext()
    if importlib.util.find_spec("accelerate") is None:
        raise TrainingError(
            "several processes are training but accelerate is not installed; "
            "pip install accelerate (or train in one process)"
        )
    import fastai.distributed  # noqa: F401  (adds Learner.distrib_ctx)

    return learn.distrib_ctx(sync_bn=False)


def train_model(
    data: Dataset,
    cfg: TrainConfig,
    out: Path,
    progress: ProgressFn | None = None,
    console: bool = True,
) -> ModelCard:
    """Run both stages and save the CAM model to ``out``.

    Args:
        data: labelled, split dataset.
        cfg: training settings.
        out: model folder (``model.safetensors`` + ``model.json``).
        progress: optional callback for a progress bar outside the console.
        console: show fastai's live bars when stderr is a terminal (else, and when False,
            one log line per epoch).

    Returns:
        The saved model's card, with validation loss and accuracy in ``metrics``.

    Raises:
        AlreadyRunningError: another process is writing ``out``.
        DownloadError: pretrained weights could not be downloaded.
    """
    from fastai.vision.all import Learner, accuracy, set_seed

    rank, world = _world()
    if world > 1 and torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # Under `accelerate launch` every process trains its part of each batch; rank 0 alone
    # holds the folder lock and saves the model.
    lock = folder_lock(out, "training") if rank == 0 else contextlib.nullcontext()
    with lock:
        device = default_device(cfg.device)
        set_seed(cfg.seed, reproducible=True)
        dls = _build_dataloaders(data, cfg, device)
        lr = cfg.lr if cfg.lr is not None else (2e-3 if cfg.pretrained else 3e-3)
        n_classes = len(data.classes)
        extra = 1 if cfg.pretrained else 0
        epochs_total = (cfg.epochs1 + extra if cfg.epochs1 else 0) + cfg.epochs2 + extra
        reporter = (
            [_make_progress_callback(progress, epochs_total * (len(dls.train) + len(dls.valid)))]
            if progress is not None
            else []
        )
        learn = _stage1_learner(dls, cfg, n_classes, [_channels_last_callback(), *reporter])
        if device.type == "cuda":
            learn.to_fp16()
        stage1: dict[str, float] = {}
        if cfg.epochs1:
            for cb in reporter:
                cb.stage = "stage 1"
            with _bars(learn, console, "stage 1"), _distributed(learn):
                _fit(learn, cfg.epochs1, cfg, lr)
                stage1_loss, stage1_acc = learn.validate()
            stage1 = {"stage1_valid_loss": float(stage1_loss), "stage1_accuracy": float(stage1_acc)}
            log.info("stage 1: valid loss %.4f, accuracy %.4f", stage1_loss, stage1_acc)
        net = CamNet(learn.model[0], n_classes)
        set_seed(cfg.seed + 1, reproducible=True)
        learn2 = Learner(
            dls,
            net,
            metrics=accuracy,
            splitter=_cam_splitter,
            cbs=[_channels_last_callback(), *reporter],
        )
        if device.type == "cuda":
            learn2.to_fp16()
        for cb in reporter:
            cb.stage = "stage 2 (CAM head)"
        with _bars(learn2, console, "stage 2 (CAM head)"), _distributed(learn2):
            _fit(learn2, cfg.epochs2, cfg, lr, cfg.head_lr_mult)
            valid_loss, valid_acc = learn2.validate()
        log.info("stage 2: valid loss %.4f, accuracy %.4f", valid_loss, valid_acc)
        card = ModelCard(
            arch=cfg.arch,
            n_features=int(net.weight.shape[1]),
            classes=tuple(data.classes),
            image_size=cfg.image_size,
            data={
                "source": data.source,
                "root": str(data.root),
                "n_images": len(data.samples),
                "n_valid": len(data.valid_idx),
                "valid_pct": data.valid_pct,
                "seed": data.seed,
                "task": data.task,
                **({"shortcut": data.shortcut} if data.shortcut else {}),
            },
            training={**asdict(cfg), "device": str(device), "lr": lr, "recipe": cfg.recipe},
            metrics={"valid_loss": float(valid_loss), "valid_accuracy": float(valid_acc), **stage1},
        )
        if rank != 0:
            return card  # rank 0 saves
        return save_model(net.float().cpu(), card, out)


def _bars(learn: Any, console: bool, stage: str) -> contextlib.AbstractContextManager[Any]:
    """fastai's live bars on a terminal; otherwise no bars and one log line per epoch.

    Without a bar, fastai's Recorder hands each epoch's values to ``learn.logger`` (``print``
    by default; fastai silences it during ``validate``), so a logger there gives exactly one
    line per trained epoch.
    """
    if console and interactive():
        return contextlib.nullcontext()

    def log_epoch(values: list[Any]) -> None:
        names = learn.recorder.metric_names
        shown = ", ".join(
            f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
            for name, value in zip(names, values, strict=False)
            if name != "epoch"
        )
        log.info("%s: epoch %d/%d: %s", stage, int(values[0]) + 1, learn.n_epoch, shown)

    stack = contextlib.ExitStack()
    stack.enter_context(learn.no_bar())
    printer = learn.logger
    learn.logger = log_epoch
    stack.callback(setattr, learn, "logger", printer)
    return stack
