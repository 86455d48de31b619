"""Analysis artifacts: ``predictions.parquet``, ``cams.npy`` and ``manifest.json`` (written last).

The manifest carries a format version, the model's sha256, class order, shapes and the sha256 of
each file, so a reader either gets a consistent set or a clear :class:`ArtifactError`.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cam_core.data import Sample
from cam_core.errors import ArtifactError
from cam_core.model_files import ModelCard, library_versions
from cam_core.storage import (
    commit_files,
    committed_path,
    read_json_object,
    sha256_file,
    write_temp,
    write_temp_bytes,
)

__all__ = [
    "ARTIFACT_FORMAT",
    "Artifacts",
    "Manifest",
    "build_predictions",
    "find_artifact_folders",
    "read_artifacts",
    "write_artifacts",
]

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = 1
TABLE_FILE = "predictions.parquet"
CAMS_FILE = "cams.npy"
MANIFEST_FILE = "manifest.json"
BASE_COLUMNS = ("path", "label", "pred", "correct", "confidence", "loss")


@dataclass(frozen=True)
class Manifest:
    """What an artifact folder holds; written last, read first."""

    classes: tuple[str, ...]
    n_images: int
    cams_shape: tuple[int, ...]
    model_sha256: str
    model_dir: str
    image_size: int
    files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    cams_dtype: str = "float16"
    format_version: int = ARTIFACT_FORMAT


@dataclass(frozen=True)
class Artifacts:
    """A verified artifact folder: table and maps are row-aligned."""

    folder: Path
    manifest: Manifest
    table: pd.DataFrame
    cams: np.ndarray


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def build_predictions(
    samples: Sequence[Sample], classes: Sequence[str], logits: np.ndarray
) -> pd.DataFrame:
    """One row per image: path, label, pred, correct, confidence, loss, logits and probs.

    Args:
        samples: the images, in the order of ``logits``.
        classes: class names in model output order.
        logits: ``(N, K)``.

    Returns:
        The predictions table; ``breed`` and ``mask_path`` columns when any sample has them.
    """
    logits = np.asarray(logits, dtype=np.float64)
    log_probs = _log_softmax(logits) if len(logits) else logits
    probs = np.exp(log_probs)
    index = {name: k for k, name in enumerate(classes)}
    label_idx = np.array([index[s.label] for s in samples], dtype=int)
    pred_idx = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    table = pd.DataFrame(
        {
            "path": [str(s.path) for s in samples],
            "label": [s.label for s in samples],
            "pred": [classes[k] for k in pred_idx],
            "correct": label_idx == pred_idx,
            "confidence": probs.max(axis=1) if len(probs) else np.zeros(0),
            "loss": -log_probs[np.arange(len(samples)), label_idx] if len(probs) else np.zeros(0),
        }
    )
    for k, name in enumerate(classes):
        table[f"logit_{name}"] = logits[:, k]
    for k, name in enumerate(classes):
        table[f"prob_{name}"] = probs[:, k]
    if any(s.breed for s in samples):
        table["breed"] = [s.breed for s in samples]
    if any(s.mask_path for s in samples):
        table["mask_path"] = [str(s.mask_path) if s.mask_path else None for s in samples]
    return table


def write_artifacts(
    folder: Path,
    table: pd.DataFrame,
    cams: np.ndarray,
    card: ModelCard,
    model_dir: Path,
    metrics: dict[str, float],
    data: dict[str, Any],
) -> Manifest:
    """Write table, maps, then the manifest, each atomically; call under the folder lock.

    Raises:
        ArtifactError: table and maps are not row-aligned.
    """
    if len(table) != len(cams):
        raise ArtifactError(f"{len(table)} table rows but {len(cams)} maps; refusing to write")
    folder.mkdir(parents=True, exist_ok=True)

    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)

    def write_cams(handle: Any) -> None:
        np.save(handle, np.ascontiguousarray(cams, dtype=np.float16))

    table_tmp = write_temp_bytes(folder / TABLE_FILE, buffer.getvalue())
    cams_tmp = write_temp(folder / CAMS_FILE, write_cams)
    manifest = Manifest(
        classes=tuple(card.classes),
        n_images=len(table),
        cams_shape=tuple(int(d) for d in cams.shape),
        model_sha256=card.weights_sha256,
        model_dir=str(model_dir.resolve()),
        image_size=card.image_size,
        files={TABLE_FILE: sha256_file(table_tmp), CAMS_FILE: sha256_file(cams_tmp)},
        metrics=metrics,
        data=data,
        versions=library_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    manifest_tmp = write_temp_bytes(
        folder / MANIFEST_FILE, json.dumps(asdict(manifest), indent=2).encode("utf-8")
    )
    # Until this commit the previous artifacts stay untouched and readable.
    commit_files(folder, {TABLE_FILE: table_tmp, CAMS_FILE: cams_tmp, MANIFEST_FILE: manifest_tmp})
    log.info("wrote artifacts for %d images to %s", len(table), folder)
    return manifest


def read_manifest(folder: Path) -> Manifest:
    """Read and validate ``manifest.json``.

    Raises:
        ArtifactError: missing folder or manifest, bad JSON, missing fields, newer format.
    """
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder {folder} does not exist; run the analysis first")
    path = committed_path(folder, MANIFEST_FILE)
    raw = read_json_object(
        path, ArtifactError, "the analysis never finished here", "rerun the analysis"
    )
    version = raw.get("format_version")
    if not isinstance(version, int) or version > ARTIFACT_FORMAT:
        raise ArtifactError(
            f"{path} has format {version!r}; this cam_core reads format {ARTIFACT_FORMAT} "
            "(upgrade cam_core or rerun the analysis)"
        )
    try:
        known = set(Manifest.__dataclass_fields__)
        manifest = Manifest(**{k: v for k, v in raw.items() if k in known})
        return Manifest(
            **{
                **asdict(manifest),
                "classes": tuple(manifest.classes),
                "cams_shape": tuple(int(d) for d in manifest.cams_shape),
            }
        )
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{path} lacks fields or has wrong types ({exc})") from None


def read_artifacts(folder: Path, verify: bool = True) -> Artifacts:
    """Load a verified artifact folder.

    Args:
        folder: the artifact folder.
        verify: check each file's sha256 against the manifest.

    Raises:
        ArtifactError: anything missing, modified, misaligned or of the wrong shape.
    """
    manifest = read_manifest(folder)
    paths = {name: committed_path(folder, name) for name in (TABLE_FILE, CAMS_FILE)}
    for name, path in paths.items():
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; rerun the analysis")
        if verify and name in manifest.files and sha256_file(path) != manifest.files[name]:
            raise ArtifactError(f"{path} does not match its manifest hash; rerun the analysis")
    try:
        table = pd.read_parquet(paths[TABLE_FILE])
        cams = np.load(paths[CAMS_FILE], allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"cannot read artifacts in {folder} ({exc}); rerun the analysis"
        ) from None
    missing = [c for c in BASE_COLUMNS if c not in table.columns]
    missing += [
        f"{kind}_{name}"
        for kind in ("logit", "prob")
        for name in manifest.classes
        if f"{kind}_{name}" not in table.columns
    ]
    if missing:
        raise ArtifactError(f"{folder / TABLE_FILE} lacks columns {', '.join(missing)}")
    if tuple(cams.shape) != manifest.cams_shape or len(table) != cams.shape[0]:
        raise ArtifactError(
            f"{folder}: cams.npy has shape {tuple(cams.shape)} but the table has {len(table)} rows "
            f"and the manifest says {manifest.cams_shape}; rerun the analysis"
        )
    if cams.ndim != 4 or cams.shape[1] != len(manifest.classes):
        raise ArtifactError(f"{folder}: cams.npy shape {cams.shape} is not (N, classes, h, w)")
    return Artifacts(folder=folder, manifest=manifest, table=table, cams=cams)


def find_artifact_folders(root: Path, max_depth: int = 3) -> list[Path]:
    """Folders under ``root`` (itself included) that hold a ``manifest.json``, newest first."""
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(MANIFEST_FILE)]
    pattern = MANIFEST_FILE
    for _ in range(max_depth):
        pattern = "*/" + pattern
        found.extend(p.parent for p in root.glob(pattern))
    return sorted(set(found), key=lambda p: (p / MANIFEST_FILE).stat().st_mtime, reverse=True)
