"""The analysis job: predictions and every class map of a validation set, written as artifacts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cam_core.artifacts import Manifest, build_predictions, write_artifacts
from cam_core.cams import cams_for_files
from cam_core.data import DataConfig, Dataset, load_dataset
from cam_core.errors import DataSourceError
from cam_core.metrics import map_peaks, pointing_hits, summary
from cam_core.model_files import load_model, read_card
from cam_core.progress import ProgressFn
from cam_core.storage import folder_lock

__all__ = ["AnalyzeConfig", "analyze", "training_data_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzeConfig:
    """How to run the batched analysis.

    Attributes:
        batch_size: images per forward pass.
        num_workers: image-decoding workers (``None``: one per core, at most 4).
        device: ``"cuda"``, ``"cpu"`` or ``None`` for CUDA when present.
    """

    batch_size: int = 64
    num_workers: int | None = None
    device: str | None = None


def training_data_config(model_dir: Path) -> DataConfig:
    """The data (folder, split fraction and seed) a saved model was trained on.

    Raises:
        DataSourceError: the training folder no longer exists and cannot be re-downloaded.
    """
    data = read_card(model_dir).data
    root = Path(str(data.get("root", "")))
    valid_pct = float(data.get("valid_pct", 0.2))
    seed = int(data.get("seed", 42))
    if root.is_dir():
        return DataConfig(source=str(root), valid_pct=valid_pct, seed=seed)
    if data.get("source") == "pets":
        return DataConfig(source="pets", valid_pct=valid_pct, seed=seed)
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
    """Predict and compute every class map for the validation set; write the artifacts.

    Args:
        model_dir: a saved model folder.
        out: artifact folder (replaced atomically file by file, manifest last).
        data_cfg: which data; ``None`` reuses the model's training data and split.
        cfg: batch size, workers, device.
        progress: optional callback (message, fraction done).

    Raises:
        ModelFileError, DataSourceError, DownloadError, AlreadyRunningError.
    """
    model = load_model(model_dir, cfg.device)
    dataset: Dataset = load_dataset(data_cfg or training_data_config(model_dir))
    if tuple(dataset.classes) != tuple(model.card.classes):
        raise DataSourceError(
            f"the data has classes {list(dataset.classes)} but the model knows "
            f"{list(model.card.classes)}; pass the data the model was trained on"
        )
    valid = dataset.valid_samples
    with folder_lock(out, "analysis"):
        logits, cams = cams_for_files(
            model,
            [s.path for s in valid],
            batch_size=cfg.batch_size,
            num_workers=cfg.num_workers,
            progress=progress,
        )
        table = build_predictions(valid, model.card.classes, logits)
        true_idx = np.array([model.card.classes.index(s.label) for s in valid], dtype=int)
        true_maps = cams[np.arange(len(valid)), true_idx].astype(np.float32)
        peaks = map_peaks(true_maps, model.card.image_size)
        table["peak_x"], table["peak_y"] = peaks[:, 0], peaks[:, 1]
        if "mask_path" in table:
            table["pointing_hit"] = pointing_hits(
                peaks, list(table["mask_path"]), model.card.image_size
            )
        metrics = summary(table)
        data_info = {
            "source": dataset.source,
            "root": str(dataset.root),
            "valid_pct": dataset.valid_pct,
            "seed": dataset.seed,
        }
        manifest = write_artifacts(out, table, cams, model.card, model_dir, metrics, data_info)
    log.info(
        "analysis: %d images, accuracy %.4f%s",
        len(table),
        metrics["accuracy"],
        f", pointing game {metrics['pointing_game']:.4f}" if "pointing_game" in metrics else "",
    )
    return manifest
