"""The analysis job: predictions and every class map of a validation set, written as artifacts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cam_core.artifacts import Manifest, build_predictions, write_artifacts
from cam_core.cams import explain_files, load_images
from cam_core.data import DataConfig, Dataset, load_dataset, read_masks
from cam_core.errors import DataSourceError
from cam_core.evaluation.suite import QualityConfig, assess
from cam_core.methods import DEFAULT_LAYER, METHODS, get_method, parse_methods
from cam_core.metrics import summary
from cam_core.model_files import load_model, read_card
from cam_core.progress import ProgressFn, scaled_progress
from cam_core.storage import folder_lock

__all__ = ["DEFAULT_METHODS", "AnalyzeConfig", "analyze", "training_data_config"]

log = logging.getLogger(__name__)


DEFAULT_METHODS = tuple(name for name, method in METHODS.items() if not method.costly)
"""Every method but the costly ones (Score-CAM: one forward pass per channel per image)."""


@dataclass(frozen=True)
class AnalyzeConfig:
    """How to run the batched analysis.

    Attributes:
        batch_size: images per forward pass.
        num_workers: image-decoding workers (``None``: one per core, at most 4).
        device: ``"cuda"``, ``"cpu"`` or ``None`` for CUDA when present.
        methods: explanation methods to compute for every image and class.
        layer: the layer the gradient and score methods read.
        quality: how to score the maps; ``None`` skips the quality metrics.
    """

    batch_size: int = 64
    num_workers: int | None = None
    device: str | None = None
    methods: tuple[str, ...] = DEFAULT_METHODS
    layer: str = DEFAULT_LAYER
    quality: QualityConfig | None = field(default_factory=QualityConfig)

    def __post_init__(self) -> None:
        parse_methods(",".join(self.methods))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def training_data_config(model_dir: Path) -> DataConfig:
    """The data (folder, split fraction and seed, task) a saved model was trained on.

    Raises:
        DataSourceError: the training folder no longer exists and cannot be re-downloaded.
    """
    data = read_card(model_dir).data
    root = Path(str(data.get("root", "")))
    if root.is_dir() or data.get("source") == "pets":
        return DataConfig(
            source=str(root) if root.is_dir() else "pets",
            task=str(data.get("task", "species")),
            valid_pct=float(data.get("valid_pct", 0.2)),
            seed=int(data.get("seed", 42)),
        )
    raise DataSourceError(
        f"the training data of {model_dir} ({root}) is gone; pass --data with the folder"
    )


def analyze(
    model_dir: Path,
    out: Path,
    data_cfg: DataConfig | None = None,
    cfg: AnalyzeConfig = AnalyzeConfig(),
    progress: ProgressFn | None = None,
) -> Manifest:
    """Predict, compute every method's maps of every class and score them; write artifacts.

    Args:
        model_dir: a saved model folder.
        out: artifact folder (replaced atomically file by file, manifest last).
        data_cfg: which data; ``None`` reuses the model's training data and split.
        cfg: batch size, workers, device, methods, layer, quality settings.
        progress: optional callback (message, fraction done).

    Raises:
        ModelFileError, DataSourceError, DownloadError, AlreadyRunningError, MethodError.
    """
    model = load_model(model_dir, cfg.device)
    dataset: Dataset = load_dataset(data_cfg or training_data_config(model_dir))
    if tuple(dataset.classes) != tuple(model.card.classes):
        raise DataSourceError(
            f"the data has classes {list(dataset.classes)} but the model knows "
            f"{list(model.card.classes)}; pass the data the model was trained on"
        )
    valid = dataset.valid_samples
    paths = [s.path for s in valid]
    with folder_lock(out, "analysis"):
        explained = explain_files(
            model,
            paths,
            cfg.methods,
            cfg.layer,
            batch_size=cfg.batch_size,
            num_workers=cfg.num_workers,
            progress=scaled_progress(progress, 0.0, 0.6 if cfg.quality else 1.0),
        )
        table = build_predictions(valid, model.card.classes, explained.logits)
        chosen = {name: get_method(name) for name in cfg.methods}
        layers = {name: method.layer_for(cfg.layer) for name, method in chosen.items()}
        methods_info = {
            name: {
                "title": method.title,
                "layer": layers[name],
                "additive": method.additive,
                "normalised": method.normalised,
                "library": method.library,
                "seconds": round(explained.seconds[name], 3),
            }
            for name, method in chosen.items()
        }
        quality: dict[str, dict[str, float]] = {}
        evaluation: dict[str, object] = {}
        if cfg.quality is not None and len(valid):
            if progress is not None:
                progress("scoring the maps", 0.6)
            has_masks = any(s.mask_path for s in valid)
            masks = (
                read_masks([s.mask_path for s in valid], model.card.image_size)
                if has_masks
                else None
            )
            true_idx = np.array([model.card.classes.index(s.label) for s in valid], dtype=int)

            def images_for(rows: np.ndarray) -> torch.Tensor:
                chosen = [paths[i] for i in rows]
                return torch.cat(list(load_images(model, chosen, cfg.batch_size, 0)))

            result = assess(
                model.net,
                explained.maps,
                layers,
                true_idx,
                masks,
                images_for,
                model.card.image_size,
                cfg.quality,
            )
            for column, values in result.columns.items():
                table[column] = values
            quality, evaluation = result.quality, result.evaluation
        primary = "cam" if "cam" in cfg.methods else cfg.methods[0]
        metrics = summary(table, primary)
        data_info = {
            "source": dataset.source,
            "root": str(dataset.root),
            "valid_pct": dataset.valid_pct,
            "seed": dataset.seed,
            "task": dataset.task,
        }
        manifest = write_artifacts(
            out,
            table,
            explained.maps,
            model.card,
            model_dir,
            metrics,
            data_info,
            methods_info,
            quality,
            evaluation,
        )
    log.info(
        "analysis: %d images, accuracy %.4f%s",
        len(table),
        metrics["accuracy"],
        f", pointing game {metrics['pointing_game']:.4f}" if "pointing_game" in metrics else "",
    )
    return manifest
