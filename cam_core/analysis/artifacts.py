"""Analysis artifacts: ``predictions.parquet``, ``maps/<method>.npy`` and ``manifest.json``
(written last).

The manifest carries a format version, the model's sha256, class order, each method's shape
and layer, the quality figures, and the sha256 of each file, so a reader either gets a
consistent set or a clear :class:`ArtifactError`. Format-1 folders (one ``cams.npy``) still
open, as the single method ``cam``. Format 5 lets a method's maps hold a class budget per
image, with the class of each slot in ``maps/<method>.classes.npy``; older folders hold every
class of every method.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cam_core.errors import ArtifactError
from cam_core.evaluation.familiarity import FamiliarityRecord
from cam_core.evaluation.layers import LayerChoice
from cam_core.evaluation.shortcuts import ShortcutSearch
from cam_core.methods import MethodRecord, forward_method
from cam_core.methods.budget import every_class, fits
from cam_core.modelling.model_files import ModelCard, library_versions
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
    "DUPLICATES_FILE",
    "EMBEDDING_FILE",
    "EXTRA_FILES",
    "FEATURES_FILE",
    "REFERENCE_FEATURES_FILE",
    "REFERENCE_TABLE_FILE",
    "SLICES_FILE",
    "Artifacts",
    "Manifest",
    "analyses_of_model",
    "classes_file",
    "find_artifact_folders",
    "maps_file",
    "new_manifest",
    "read_artifacts",
    "read_manifest",
    "verify_maps",
    "write_artifacts",
]

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = 5
TABLE_FILE = "predictions.parquet"
MAPS_DIR = "maps"
LEGACY_CAMS_FILE = "cams.npy"
MANIFEST_FILE = "manifest.json"
FEATURES_FILE = "features.npy"
REFERENCE_FEATURES_FILE = "reference_features.npy"
REFERENCE_TABLE_FILE = "reference.parquet"
EMBEDDING_FILE = "embedding.npy"
DUPLICATES_FILE = "duplicates.parquet"
SLICES_FILE = "slices.parquet"
EXTRA_FILES = (
    FEATURES_FILE,
    REFERENCE_FEATURES_FILE,
    REFERENCE_TABLE_FILE,
    EMBEDDING_FILE,
    DUPLICATES_FILE,
    SLICES_FILE,
)
"""Whole-dataset outputs beside the table and the maps (artifact format 3): row-aligned
features ``(N, C)`` float16, the familiarity reference's features ``(M, C)`` and paths, the
2-D embedding ``(N, 2)`` float32, and the near-duplicate pairs; format 4 adds the weak
slices (:func:`cam_core.evaluation.slices.weak_slices`)."""
BASE_COLUMNS = ("path", "label", "pred", "correct", "confidence", "loss")


def maps_file(method: str) -> str:
    """The file (relative to the artifact folder) holding ``method``'s maps."""
    return f"{MAPS_DIR}/{method}.npy"


def classes_file(method: str) -> str:
    """The file holding the class of each slot of ``method``'s maps, when they hold a class
    budget (artifact format 5)."""
    return f"{MAPS_DIR}/{method}.classes.npy"


@dataclass(frozen=True)
class Manifest:
    """What an artifact folder holds; written last, read first.

    Attributes:
        methods: per method, what ran and where its maps ``(N, K, h, w)`` are
            (:class:`~cam_core.methods.MethodRecord`, built by the method itself).
        quality: per method and per baseline (``random``, ``centre``): mean localisation and
            faithfulness figures; per method the sanity check (``randomization_spearman``).
        evaluation: how the quality was measured (sample size and seed, steps, thresholds).
        unavailable: methods that do not apply to the model → why (e.g. exact CAM on a head
            that is not global average pooling + one linear layer).
        extras: file → shape of each whole-dataset output (:data:`EXTRA_FILES`) the analysis
            wrote (format 3; empty in older folders).
        features: the feature vectors: layer, dimension.
        familiarity: how familiarity was scored (:class:`FamiliarityRecord` fields).
        embedding: how the 2-D map was made (method, parameters, seconds).
        duplicates: the near-duplicate threshold and pair counts.
        shortcuts: the shortcut search (format 4; ``None`` in older folders).
        timings: wall seconds of each stage of the analysis, in the order they ran
            (format 5; empty in older folders).
        layer_choice: how ``--layer auto`` chose the layer the methods read (candidates,
            their scores, the rule), ``None`` when the layer was given.
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
    methods: dict[str, MethodRecord] = field(default_factory=dict)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    maps_dtype: str = "float16"
    format_version: int = ARTIFACT_FORMAT
    unavailable: dict[str, str] = field(default_factory=dict)
    extras: dict[str, list[int]] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    familiarity: FamiliarityRecord | None = None
    embedding: dict[str, Any] = field(default_factory=dict)
    duplicates: dict[str, Any] = field(default_factory=dict)
    shortcuts: ShortcutSearch | None = None
    timings: dict[str, float] = field(default_factory=dict)
    layer_choice: LayerChoice | None = None

    @property
    def method_names(self) -> tuple[str, ...]:
        """The methods whose maps the folder holds, in analysis order."""
        return tuple(self.methods)

    def to_json(self) -> dict[str, Any]:
        """``manifest.json``'s content."""
        raw = asdict(self)
        raw["methods"] = {name: record.to_json() for name, record in self.methods.items()}
        raw["familiarity"] = self.familiarity.to_json() if self.familiarity is not None else None
        raw["shortcuts"] = self.shortcuts.to_json() if self.shortcuts is not None else None
        raw["layer_choice"] = self.layer_choice.to_json() if self.layer_choice is not None else None
        return raw


@dataclass(frozen=True)
class Artifacts:
    """A verified artifact folder: the table and every method's maps are row-aligned.

    Attributes:
        maps: method name → read-only, memory-mapped float16 ``(N, S, h, w)``: every class
            (``S = K``), or a class budget whose slots' classes are in ``map_classes``.
        map_classes: method name → ``(N, S)`` class of each slot, for the methods whose maps
            hold a class budget (artifact format 5); read through :meth:`image_maps` and
            :func:`cam_core.methods.budget.maps_for`, never by slot.
    """

    folder: Path
    manifest: Manifest
    table: pd.DataFrame
    maps: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    map_classes: dict[str, np.ndarray] = field(default_factory=dict)

    def array(self, name: str) -> np.ndarray | None:
        """A whole-dataset array (e.g. :data:`FEATURES_FILE`), memory-mapped; ``None`` where the
        analysis has none (formats 1 and 2, or a reference that could not be built)."""
        return self.arrays.get(name)

    def extra_table(self, name: str) -> pd.DataFrame | None:
        """A whole-dataset table (e.g. :data:`DUPLICATES_FILE`), or ``None`` where there is none.

        Raises:
            ArtifactError: the file is listed but cannot be read.
        """
        if name not in self.manifest.extras:
            return None
        path = committed_path(self.folder, name)
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read {path} ({exc}); rerun the analysis") from None

    def image_maps(self, method: str, row: int) -> np.ndarray:
        """Every class map of one image, float32 ``(K, h, w)``, read from the file; all NaN
        for a class the method's budget left out (:meth:`has_map`).

        A plain read instead of indexing the memory map: on this project's machines a fault
        on a mapped file brought in about 1.8 MB (counted as the process's resident memory),
        so a page of thumbnails from a 100k-image analysis cost hundreds of MB.
        """
        array = self.maps_of(method)
        classes = self.map_classes.get(method)
        slots = None if classes is None else classes[row]
        if not isinstance(array, np.memmap) or array.filename is None:
            return every_class(array[row], slots, len(self.manifest.classes))
        if not 0 <= row < len(array):
            raise IndexError(f"row {row} is outside the analysis (0..{len(array) - 1})")
        count = int(np.prod(array.shape[1:]))
        values = np.fromfile(
            array.filename,
            dtype=array.dtype,
            count=count,
            offset=int(array.offset) + row * count * array.itemsize,
        )
        return every_class(values.reshape(array.shape[1:]), slots, len(self.manifest.classes))

    def has_map(self, method: str, row: int, k: int) -> bool:
        """Whether the analysis holds ``method``'s map of class ``k`` for image ``row``."""
        classes = self.map_classes.get(method)
        return classes is None or bool((classes[row] == k).any())

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


def new_manifest(
    card: ModelCard,
    model_dir: Path,
    n_images: int,
    methods: Mapping[str, MethodRecord],
    metrics: Mapping[str, float],
    data: Mapping[str, Any],
    quality: Mapping[str, Mapping[str, float]] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    unavailable: Mapping[str, str] | None = None,
    **whole_dataset: Any,
) -> Manifest:
    """The manifest of an analysis about to be written (file hashes and time are added by
    :func:`write_artifacts`).

    Args:
        card: the analysed model's card.
        model_dir: the analysed model's folder.
        n_images: rows of the table.
        methods: per method, its record (:meth:`~cam_core.methods.ExplanationMethod.record`).
        metrics: headline figures.
        data: where the images came from.
        quality: per method and baseline: quality figures.
        evaluation: how the quality was measured.
        unavailable: methods that do not apply to the model, with the reason.
        whole_dataset: the ``features``, ``familiarity``, ``embedding``, ``duplicates`` and
            ``shortcuts`` blocks (:class:`Manifest`).
    """
    return Manifest(
        classes=tuple(card.classes),
        n_images=n_images,
        model_sha256=card.weights_sha256,
        model_dir=str(model_dir.resolve()),
        image_size=card.image_size,
        metrics=dict(metrics),
        data=dict(data),
        methods=dict(methods),
        quality={name: dict(values) for name, values in (quality or {}).items()},
        evaluation=dict(evaluation or {}),
        unavailable=dict(unavailable or {}),
        **whole_dataset,
    )


def write_artifacts(
    folder: Path,
    table: pd.DataFrame,
    maps: Mapping[str, np.ndarray],
    manifest: Manifest,
    extras: Mapping[str, np.ndarray | pd.DataFrame] | None = None,
    map_classes: Mapping[str, np.ndarray] | None = None,
) -> Manifest:
    """Write the table, every method's maps, then the manifest; call under the folder lock.

    Args:
        folder: the artifact folder.
        table: one row per image.
        maps: method name → ``(N, S, h, w)``, row-aligned with ``table``.
        manifest: what the analysis was (:func:`new_manifest`); one record per map array.
        extras: whole-dataset outputs by file name (:data:`EXTRA_FILES`): arrays are stored
            with their dtype, tables as Parquet.
        map_classes: method name → ``(N, S)`` slot classes, for maps of a class budget
            (their records name :func:`classes_file`).

    Returns:
        The manifest as written: with the files' hashes, library versions and time.

    Raises:
        ArtifactError: table, maps and manifest do not agree, or no maps at all.
    """
    if not maps:
        raise ArtifactError("no maps to write; pass at least one method")
    if set(maps) != set(manifest.methods) or len(table) != manifest.n_images:
        raise ArtifactError(
            f"the manifest describes {', '.join(manifest.methods)} on {manifest.n_images} "
            f"images but there are maps of {', '.join(maps)} on {len(table)}; refusing to write"
        )
    for name, array in maps.items():
        record = manifest.methods[name]
        if len(table) != len(array) or array.ndim != 4 or tuple(array.shape) != record.shape:
            raise ArtifactError(
                f"{len(table)} table rows but {name} maps of shape {array.shape} "
                f"(recorded {record.shape}); refusing to write"
            )
        if record.file != maps_file(name):
            raise ArtifactError(f"the {name} maps must go to {maps_file(name)}, not {record.file}")
        _check_slots(name, array, (map_classes or {}).get(name), record, len(manifest.classes))
    unknown = [name for name in extras or {} if name not in EXTRA_FILES]
    if unknown:
        raise ArtifactError(f"unknown artifact files {unknown}; known: {', '.join(EXTRA_FILES)}")
    (folder / MAPS_DIR).mkdir(parents=True, exist_ok=True)

    temps = {TABLE_FILE: _write_table(folder / TABLE_FILE, table)}
    for name, array in maps.items():
        temps[maps_file(name)] = _write_array(folder / maps_file(name), array, np.float16)
    for name, slots in (map_classes or {}).items():
        temps[classes_file(name)] = _write_array(folder / classes_file(name), slots, np.int32)
    shapes: dict[str, list[int]] = {}
    for name, value in (extras or {}).items():
        if isinstance(value, pd.DataFrame):
            temps[name] = _write_table(folder / name, value)
        else:
            temps[name] = _write_array(folder / name, value, value.dtype)
        shapes[name] = [int(d) for d in value.shape]
    written = replace(
        manifest,
        extras=shapes,
        files={name: sha256_file(path) for name, path in temps.items()},
        versions=library_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    temps[MANIFEST_FILE] = write_temp_bytes(
        folder / MANIFEST_FILE, json.dumps(written.to_json(), indent=2).encode("utf-8")
    )
    # Until this commit the previous artifacts stay untouched and readable.
    commit_files(folder, temps)
    _remove_unlisted_maps(folder, set(temps))
    log.info("wrote artifacts for %d images (%s) to %s", len(table), ", ".join(maps), folder)
    return written


def _check_slots(
    name: str,
    maps: np.ndarray,
    slots: np.ndarray | None,
    record: MethodRecord,
    n_classes: int,
) -> None:
    """Refuse maps whose slot classes are missing, misshapen or out of range."""
    if slots is None:
        if record.classes_file or maps.shape[1] != n_classes:
            raise ArtifactError(
                f"{name} maps of shape {maps.shape} hold {maps.shape[1]} of {n_classes} classes "
                "but no slot classes were given; refusing to write"
            )
        return
    if record.classes_file != classes_file(name):
        raise ArtifactError(f"the {name} slot classes must go to {classes_file(name)}")
    if not fits(slots, maps.shape, n_classes):
        raise ArtifactError(
            f"{name}: slot classes of shape {slots.shape} do not fit maps of shape {maps.shape} "
            f"and {n_classes} classes; refusing to write"
        )


def _write_array(path: Path, array: np.ndarray, dtype: Any) -> Path:
    def write(handle: Any) -> None:
        np.save(handle, np.ascontiguousarray(array, dtype=dtype))

    return write_temp(path, write)


def _write_table(path: Path, table: pd.DataFrame) -> Path:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return write_temp_bytes(path, buffer.getvalue())


def _remove_unlisted_maps(folder: Path, listed: set[str]) -> None:
    """Drop map and whole-dataset files of an earlier analysis that the new manifest does not
    list."""
    stale = [p for p in (folder / MAPS_DIR).glob("*.npy") if f"{MAPS_DIR}/{p.name}" not in listed]
    stale += [folder / LEGACY_CAMS_FILE] if (folder / LEGACY_CAMS_FILE).exists() else []
    stale += [folder / name for name in EXTRA_FILES if name not in listed]
    for path in stale:
        path.unlink(missing_ok=True)


def _upgraded(raw: dict[str, Any]) -> dict[str, Any]:
    """A format-1 manifest (one ``cams.npy``) in format-2 terms: the single method whose maps
    come out of the forward pass."""
    if raw.get("format_version") != 1:
        return raw
    method = forward_method()
    shape = [int(d) for d in raw.get("cams_shape", [])]
    return {
        **raw,
        "methods": {
            method.name: {
                "title": method.title,
                "shape": shape,
                "file": LEGACY_CAMS_FILE,
                "layer": method.layer_for("body"),
                "additive": method.additive,
                "normalised": method.normalised,
                "library": method.library,
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
        fields = {k: v for k, v in raw.items() if k in known}
        methods = {
            str(name): MethodRecord.from_json(str(name), entry)
            for name, entry in dict(fields.get("methods") or {}).items()
        }
        if not methods:
            raise ValueError("no methods")
        familiarity = fields.get("familiarity")
        shortcuts = fields.get("shortcuts")
        choice = fields.get("layer_choice")
        return Manifest(
            **{
                **fields,
                "classes": tuple(fields["classes"]),
                "methods": methods,
                "familiarity": FamiliarityRecord.from_json(familiarity)
                if isinstance(familiarity, dict)
                else None,
                "shortcuts": ShortcutSearch.from_json(shortcuts)
                if isinstance(shortcuts, dict)
                else None,
                "layer_choice": LayerChoice.from_json(choice) if isinstance(choice, dict) else None,
            }
        )
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ArtifactError(f"{path} lacks fields or has wrong types ({exc})") from None


def _large_files(manifest: Manifest) -> list[str]:
    """The files hashed in the background by the dashboard: maps and whole-dataset arrays."""
    arrays = [name for name in manifest.extras if name.endswith(".npy")]
    return [record.file for record in manifest.methods.values()] + arrays


def verify_maps(folder: Path, manifest: Manifest) -> None:
    """Check every map file's sha256 against the manifest (seconds for gigabytes of maps).

    Raises:
        ArtifactError: a map file is missing or does not match its hash.
    """
    for name in _large_files(manifest):
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
        verify_maps: with ``verify``, hash the map and whole-dataset array files too; ``False``
            leaves them to
            :func:`verify_maps` (the dashboard runs it in the background: hashing gigabytes
            of maps would hold up the first page). Their shapes are always checked.

    Raises:
        ArtifactError: anything missing, modified, misaligned or of the wrong shape.
    """
    manifest = read_manifest(folder)
    large = set(_large_files(manifest))
    slot_files = {m: r.classes_file for m, r in manifest.methods.items() if r.classes_file}
    names = {TABLE_FILE} | large | set(manifest.extras) | set(slot_files.values())
    paths = {name: committed_path(folder, name) for name in names}
    for name, path in paths.items():
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; rerun the analysis")
        check = verify and (verify_maps or name not in large)
        if check and name in manifest.files and sha256_file(path) != manifest.files[name]:
            raise ArtifactError(f"{path} does not match its manifest hash; rerun the analysis")
    try:
        table = pd.read_parquet(paths[TABLE_FILE])
        maps = {
            method: np.load(paths[record.file], mmap_mode="r", allow_pickle=False)
            for method, record in manifest.methods.items()
        }
        arrays = {
            name: np.load(paths[name], mmap_mode="r", allow_pickle=False)
            for name in manifest.extras
            if name.endswith(".npy")
        }
        map_classes = {
            method: np.load(paths[file], allow_pickle=False) for method, file in slot_files.items()
        }
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"cannot read artifacts in {folder} ({exc}); rerun the analysis"
        ) from None
    if manifest.format_version == 1:  # renaming a column that is not there changes nothing
        table = table.rename(columns={"pointing_hit": f"pointing_hit.{forward_method().name}"})
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
        expected = manifest.methods[method].shape
        if tuple(array.shape) != expected or len(table) != array.shape[0]:
            raise ArtifactError(
                f"{folder}: the {method} maps have shape {tuple(array.shape)} but the table has "
                f"{len(table)} rows and the manifest says {expected}; rerun the analysis"
            )
        slots = map_classes.get(method)
        held = len(manifest.classes) if slots is None else slots.shape[1]
        if array.ndim != 4 or array.shape[1] != held:
            raise ArtifactError(
                f"{folder}: the {method} maps' shape {array.shape} is not (N, classes, h, w)"
            )
        if slots is not None and not fits(slots, array.shape, len(manifest.classes)):
            raise ArtifactError(
                f"{folder}: the {method} slot classes do not fit its maps; rerun the analysis"
            )
    for name, array in arrays.items():
        if list(array.shape) != manifest.extras[name]:
            raise ArtifactError(
                f"{folder}: {name} has shape {tuple(array.shape)} but the manifest says "
                f"{tuple(manifest.extras[name])}; rerun the analysis"
            )
    features = arrays.get(FEATURES_FILE)
    if features is not None and len(features) != len(table):
        raise ArtifactError(f"{folder}: {len(features)} feature rows for {len(table)} images")
    return Artifacts(
        folder=folder,
        manifest=manifest,
        table=table,
        maps=maps,
        arrays=arrays,
        map_classes=map_classes,
    )


def analyses_of_model(model_sha256: str, folders: Sequence[Path]) -> list[Path]:
    """The artifact folders among ``folders`` that analysed the model with these weights and
    hold its features (format 3), newest first; unreadable folders are skipped."""
    found = []
    for folder in folders:
        try:
            manifest = read_manifest(folder)
        except ArtifactError:
            continue
        if manifest.model_sha256 == model_sha256 and FEATURES_FILE in manifest.extras:
            found.append((manifest.created_at, folder))
    return [folder for _, folder in sorted(found, key=lambda item: item[0], reverse=True)]


def find_artifact_folders(root: Path, max_depth: int = 3) -> list[Path]:
    """Folders under ``root`` (itself included, at most ``max_depth`` levels down) that hold a
    ``manifest.json``, newest first.

    Each folder is listed once and its entries are told apart by their directory-entry type,
    so a home that also holds image folders costs one listing per folder, not one ``stat``
    per image (the sidebar calls this on every rerun). Symbolic links are not followed: a
    folder of linked images would cost a ``stat`` per link, and links can loop. Folders that
    cannot be listed are skipped.
    """
    if not root.is_dir():
        return []
    found = []
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            if entry.name == MANIFEST_FILE and entry.is_file():
                found.append(folder)
            elif depth < max_depth and entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), depth + 1))
    return sorted(found, key=lambda p: (p / MANIFEST_FILE).stat().st_mtime, reverse=True)
