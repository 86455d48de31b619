"""Analysis artifacts: ``predictions.parquet``, ``maps/<method>.npy`` and ``manifest.json``
(written last).

The manifest carries a format version, the model's sha256, class order, each method's shape
and layer, the quality figures, and the sha256 of each file, so a reader either gets a
consistent set or a clear :class:`ArtifactError`. Format-1 folders (one ``cams.npy``) still
open, as the single method ``cam``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
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
    "maps_file",
    "read_artifacts",
    "read_manifest",
    "verify_maps",
    "write_artifacts",
]

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = 2
TABLE_FILE = "predictions.parquet"
MAPS_DIR = "maps"
LEGACY_CAMS_FILE = "cams.npy"
MANIFEST_FILE = "manifest.json"
BASE_COLUMNS = ("path", "label", "pred", "correct", "confidence", "loss")


def maps_file(method: str) -> str:
    """The file (relative to the artifact folder) holding ``method``'s maps."""
    return f"{MAPS_DIR}/{method}.npy"


@dataclass(frozen=True)
class Manifest:
    """What an artifact folder holds; written last, read first.

    Attributes:
        methods: per method: ``shape`` ``(N, K, h, w)``, ``layer``, ``additive``,
            ``normalised``, ``library``, ``seconds``, ``file``.
        quality: per method and per baseline (``random``, ``centre``): mean localisation and
            faithfulness figures; per method the sanity check (``randomization_spearman``).
        evaluation: how the quality was measured (sample size and seed, steps, thresholds).
        unavailable: methods that do not apply to the model → why (e.g. exact CAM on a head
            that is not global average pooling + one linear layer).
    """

    classes: tuple[str, ...]
    n_images: int
    model_sha256: str
    model_dir: str
    image_size: int
    files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    maps_dtype: str = "float16"
    format_version: int = ARTIFACT_FORMAT
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def method_names(self) -> tuple[str, ...]:
        """The methods whose maps the folder holds, in analysis order."""
        return tuple(self.methods)


@dataclass(frozen=True)
class Artifacts:
    """A verified artifact folder: the table and every method's maps are row-aligned.

    Attributes:
        maps: method name → read-only, memory-mapped float16 ``(N, K, h, w)``.
    """

    folder: Path
    manifest: Manifest
    table: pd.DataFrame
    maps: dict[str, np.ndarray]

    def image_maps(self, method: str, row: int) -> np.ndarray:
        """Every class map of one image, float32 ``(K, h, w)``, read from the file.

        A plain read instead of indexing the memory map: on this project's machines a fault
        on a mapped file brought in about 1.8 MB (counted as the process's resident memory),
        so a page of thumbnails from a 100k-image analysis cost hundreds of MB.
        """
        array = self.maps_of(method)
        if not isinstance(array, np.memmap) or array.filename is None:
            return np.asarray(array[row], dtype=np.float32)
        if not 0 <= row < len(array):
            raise IndexError(f"row {row} is outside the analysis (0..{len(array) - 1})")
        count = int(np.prod(array.shape[1:]))
        values = np.fromfile(
            array.filename,
            dtype=array.dtype,
            count=count,
            offset=int(array.offset) + row * count * array.itemsize,
        )
        return values.reshape(array.shape[1:]).astype(np.float32)

    def maps_of(self, method: str) -> np.ndarray:
        """One method's maps.

        Raises:
            ArtifactError: the analysis did not compute that method.
        """
        try:
            return self.maps[method]
        except KeyError:
            raise ArtifactError(
                f"{self.folder} has no maps of {method!r} (it has {', '.join(self.maps)}); "
                f"rerun the analysis with --methods {method}"
            ) from None


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
    maps: Mapping[str, np.ndarray],
    card: ModelCard,
    model_dir: Path,
    metrics: dict[str, float],
    data: dict[str, Any],
    methods: Mapping[str, dict[str, Any]] | None = None,
    quality: Mapping[str, dict[str, float]] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> Manifest:
    """Write the table, every method's maps, then the manifest; call under the folder lock.

    Args:
        folder: the artifact folder.
        table: one row per image.
        maps: method name → ``(N, K, h, w)``, row-aligned with ``table``.
        card: the analysed model's card.
        model_dir: the analysed model's folder.
        metrics: headline figures.
        data: where the images came from.
        methods: per method: layer, additive, library, seconds (shape and file are added).
        quality: per method and baseline: quality figures.
        evaluation: how the quality was measured.
        unavailable: methods that do not apply to the model, with the reason.

    Raises:
        ArtifactError: table and maps are not row-aligned, or no maps at all.
    """
    if not maps:
        raise ArtifactError("no maps to write; pass at least one method")
    for name, array in maps.items():
        if len(table) != len(array) or array.ndim != 4:
            raise ArtifactError(
                f"{len(table)} table rows but {name} maps of shape {array.shape}; refusing to write"
            )
    (folder / MAPS_DIR).mkdir(parents=True, exist_ok=True)

    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    temps = {TABLE_FILE: write_temp_bytes(folder / TABLE_FILE, buffer.getvalue())}
    for name, array in maps.items():
        temps[maps_file(name)] = _write_array(folder / maps_file(name), array)
    described = {
        name: {
            **(methods or {}).get(name, {}),
            "shape": [int(d) for d in maps[name].shape],
            "file": maps_file(name),
        }
        for name in maps
    }
    manifest = Manifest(
        classes=tuple(card.classes),
        n_images=len(table),
        model_sha256=card.weights_sha256,
        model_dir=str(model_dir.resolve()),
        image_size=card.image_size,
        files={name: sha256_file(path) for name, path in temps.items()},
        metrics=metrics,
        data=data,
        versions=library_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        methods=described,
        quality={name: dict(values) for name, values in (quality or {}).items()},
        evaluation=dict(evaluation or {}),
        unavailable=dict(unavailable or {}),
    )
    temps[MANIFEST_FILE] = write_temp_bytes(
        folder / MANIFEST_FILE, json.dumps(asdict(manifest), indent=2).encode("utf-8")
    )
    # Until this commit the previous artifacts stay untouched and readable.
    commit_files(folder, temps)
    _remove_unlisted_maps(folder, set(temps))
    log.info("wrote artifacts for %d images (%s) to %s", len(table), ", ".join(maps), folder)
    return manifest


def _write_array(path: Path, array: np.ndarray) -> Path:
    def write(handle: Any) -> None:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float16))

    return write_temp(path, write)


def _remove_unlisted_maps(folder: Path, listed: set[str]) -> None:
    """Drop map files of an earlier analysis that the new manifest does not list."""
    stale = [p for p in (folder / MAPS_DIR).glob("*.npy") if f"{MAPS_DIR}/{p.name}" not in listed]
    stale += [folder / LEGACY_CAMS_FILE] if (folder / LEGACY_CAMS_FILE).exists() else []
    for path in stale:
        path.unlink(missing_ok=True)


def _upgraded(raw: dict[str, Any]) -> dict[str, Any]:
    """A format-1 manifest (one ``cams.npy``) in format-2 terms: the single method ``cam``."""
    if raw.get("format_version") != 1:
        return raw
    shape = [int(d) for d in raw.get("cams_shape", [])]
    return {
        **raw,
        "methods": {
            "cam": {
                "shape": shape,
                "file": LEGACY_CAMS_FILE,
                "layer": "body",
                "additive": True,
                "normalised": False,
                "library": "cam_core",
            }
        },
    }


def read_manifest(folder: Path) -> Manifest:
    """Read and validate ``manifest.json`` (format 1 or 2).

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
            f"{path} has format {version!r}; this cam_core reads formats 1 to {ARTIFACT_FORMAT} "
            "(upgrade cam_core or rerun the analysis)"
        )
    raw = _upgraded(raw)
    try:
        known = set(Manifest.__dataclass_fields__)
        manifest = Manifest(**{k: v for k, v in raw.items() if k in known})
        methods = {str(k): dict(v) for k, v in manifest.methods.items()}
        if not methods:
            raise ValueError("no methods")
        return Manifest(
            **{**asdict(manifest), "classes": tuple(manifest.classes), "methods": methods}
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{path} lacks fields or has wrong types ({exc})") from None


def verify_maps(folder: Path, manifest: Manifest) -> None:
    """Check every map file's sha256 against the manifest (seconds for gigabytes of maps).

    Raises:
        ArtifactError: a map file is missing or does not match its hash.
    """
    for info in manifest.methods.values():
        name = str(info["file"])
        path = committed_path(folder, name)
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; rerun the analysis")
        if name in manifest.files and sha256_file(path) != manifest.files[name]:
            raise ArtifactError(f"{path} does not match its manifest hash; rerun the analysis")


def read_artifacts(folder: Path, verify: bool = True, verify_maps: bool = True) -> Artifacts:
    """Load a verified artifact folder; maps are memory-mapped, not read whole.

    Args:
        folder: the artifact folder.
        verify: check each file's sha256 against the manifest.
        verify_maps: with ``verify``, hash the map files too; ``False`` leaves them to
            :func:`verify_maps` (the dashboard runs it in the background: hashing gigabytes
            of maps would hold up the first page). Their shapes are always checked.

    Raises:
        ArtifactError: anything missing, modified, misaligned or of the wrong shape.
    """
    manifest = read_manifest(folder)
    names = {TABLE_FILE} | {str(m["file"]) for m in manifest.methods.values()}
    paths = {name: committed_path(folder, name) for name in names}
    for name, path in paths.items():
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; rerun the analysis")
        check = verify and (verify_maps or name == TABLE_FILE)
        if check and name in manifest.files and sha256_file(path) != manifest.files[name]:
            raise ArtifactError(f"{path} does not match its manifest hash; rerun the analysis")
    try:
        table = pd.read_parquet(paths[TABLE_FILE])
        maps = {
            method: np.load(paths[str(info["file"])], mmap_mode="r", allow_pickle=False)
            for method, info in manifest.methods.items()
        }
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"cannot read artifacts in {folder} ({exc}); rerun the analysis"
        ) from None
    if manifest.format_version == 1 and "pointing_hit" in table:
        table = table.rename(columns={"pointing_hit": "pointing_hit.cam"})
    missing = [c for c in BASE_COLUMNS if c not in table.columns]
    missing += [
        f"{kind}_{name}"
        for kind in ("logit", "prob")
        for name in manifest.classes
        if f"{kind}_{name}" not in table.columns
    ]
    if missing:
        raise ArtifactError(f"{folder / TABLE_FILE} lacks columns {', '.join(missing)}")
    for method, array in maps.items():
        expected = tuple(int(d) for d in manifest.methods[method].get("shape", ()))
        if tuple(array.shape) != expected or len(table) != array.shape[0]:
            raise ArtifactError(
                f"{folder}: the {method} maps have shape {tuple(array.shape)} but the table has "
                f"{len(table)} rows and the manifest says {expected}; rerun the analysis"
            )
        if array.ndim != 4 or array.shape[1] != len(manifest.classes):
            raise ArtifactError(
                f"{folder}: the {method} maps' shape {array.shape} is not (N, classes, h, w)"
            )
    return Artifacts(folder=folder, manifest=manifest, table=table, maps=maps)


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
