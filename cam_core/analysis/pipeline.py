"""The analysis job: predictions and every class map of a validation set, written as artifacts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cam_core.analysis.artifacts import (
    DUPLICATES_FILE,
    EMBEDDING_FILE,
    FEATURES_FILE,
    REFERENCE_FEATURES_FILE,
    REFERENCE_TABLE_FILE,
    SLICES_FILE,
    Manifest,
    classes_file,
    maps_file,
    new_manifest,
    write_artifacts,
)
from cam_core.analysis.cams import FEATURE_LAYER, ExplainedFiles, explain_files, load_images
from cam_core.analysis.findings import DatasetFindings, find
from cam_core.data.sources import (
    DataConfig,
    Dataset,
    Sample,
    has_class_folders,
    load_dataset,
    read_masks,
)
from cam_core.errors import DataSourceError, MethodError, PreprocessingError
from cam_core.evaluation.familiarity import REFERENCE_ANALYSED, REFERENCE_TRAINING
from cam_core.evaluation.layers import DEFAULT_LAYER_SAMPLE, LayerChoice, choose_layer
from cam_core.evaluation.metrics import summary
from cam_core.evaluation.shortcuts import (
    ShortcutConfig,
    ShortcutSearch,
    check_preprocessing,
    find_shortcuts,
)
from cam_core.evaluation.slices import (
    PROPERTY_COLUMNS,
    file_facts,
    slice_columns,
    weak_slices,
)
from cam_core.evaluation.suite import QualityConfig, assess
from cam_core.methods import (
    DEFAULT_METHODS,
    METHODS,
    applicable,
    get_method,
    layer_readers,
    parse_methods,
    primary_method,
    unavailable,
)
from cam_core.methods.budget import DEFAULT_CLASSES_PER_IMAGE
from cam_core.modelling.model_files import (
    LoadedModel,
    ModelCard,
    load_model,
    normalisation_recorded,
    read_card,
)
from cam_core.modelling.precision import PRECISIONS, resolve_precision
from cam_core.progress import ProgressFn, Stopwatch, scaled_progress
from cam_core.storage import folder_lock

__all__ = [
    "AnalysisJob",
    "AnalyzeConfig",
    "analyze",
    "build_predictions",
    "explain_rows",
    "familiarity_reference",
    "finish",
    "folder_data_config",
    "prepare",
    "training_data_config",
]

log = logging.getLogger(__name__)


AUTO_LAYER = "auto"
"""``--layer auto``: choose among the candidate layers (:mod:`cam_core.evaluation.layers`)."""


@dataclass(frozen=True)
class AnalyzeConfig:
    """How to run the batched analysis.

    Attributes:
        batch_size: images per forward pass.
        num_workers: image-decoding workers (``None``: one per core, at most 4).
        device: ``"cuda"``, ``"cpu"`` or ``None`` for CUDA when present.
        methods: explanation methods to compute for every image and class; ``None``: every
            method but the costly ones that applies to the model (exact CAM needs a CAM head,
            attention rollout a vision transformer).
        costly: with ``methods=None``, the costly methods that apply too (Score-CAM).
        layer_n: with ``layer="auto"``, images (a seeded sample) the candidates are scored on.
        layer: the layer the gradient and score methods read; ``None``: the model card's
            (``body``, the last feature maps, unless the import named another); ``auto``:
            the best of the candidate layers on a seeded sample
            (:func:`cam_core.evaluation.layers.choose_layer`, recorded in the manifest).
        quality: how to score the maps; ``None`` skips the quality metrics.
        precision: of the forward pass giving logits and exact CAM (``auto``: bf16 autocast +
            channels_last on a CPU with native bf16, fp16 on CUDA, else fp32); recorded in the
            manifest. The other methods run in fp32.
        reference_n: most training images (a seeded sample) whose features are the reference
            of familiarity and of the leakage check.
        seed: seeds that sample and the 2-D map.
        shortcuts: how to search for shortcuts; ``None`` skips the search.
        classes_per_image: the class budget of every method but exact CAM: maps of the true
            class, the prediction and the next most probable, this many per image (``None``:
            every class, whose cost grows with the number of classes).
    """

    batch_size: int = 64
    num_workers: int | None = None
    device: str | None = None
    methods: tuple[str, ...] | None = None
    costly: bool = False
    layer: str | None = None
    layer_n: int = DEFAULT_LAYER_SAMPLE
    quality: QualityConfig | None = field(default_factory=QualityConfig)
    precision: str = "auto"
    reference_n: int = 5000
    seed: int = 0
    shortcuts: ShortcutConfig | None = field(default_factory=ShortcutConfig)
    classes_per_image: int | None = DEFAULT_CLASSES_PER_IMAGE

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        if self.methods is not None:
            parse_methods(",".join(self.methods))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.reference_n < 2:
            raise ValueError(f"reference_n must be at least 2, got {self.reference_n}")
        if self.layer_n < 1:
            raise ValueError(f"layer_n must be at least 1, got {self.layer_n}")
        if self.classes_per_image is not None and self.classes_per_image < 1:
            raise ValueError(
                f"classes_per_image must be at least 1 or None, got {self.classes_per_image}"
            )


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


def training_data_config(model_dir: Path) -> DataConfig:
    """The data (folder, split fraction and seed, task) a saved model was trained on.

    Raises:
        DataSourceError: the training folder no longer exists and cannot be re-downloaded, or
            the model was imported (it has no training data here).
    """
    card = read_card(model_dir)
    if card.imported:
        raise DataSourceError(
            f"{model_dir} holds an imported model, which has no training data here; pass "
            "--data with a folder of images (one sub-folder per class, or Pets-named files)"
        )
    data = card.data
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


def folder_data_config(
    model_dir: Path,
    source: str,
    task: str | None = None,
    valid_pct: float | None = None,
    seed: int = 42,
) -> DataConfig:
    """The data to analyse when the user names it (``--data``), with defaults from the model.

    A model trained here: its task, a ``valid_pct`` split (0.2 by default). An imported model:
    every image (no split, unless ``valid_pct`` is given), and the task from its classes
    (species when the model knows cat and dog, else breeds for Pets-named files).
    """
    card = read_card(model_dir)
    if not card.imported:
        return DataConfig(
            source=source,
            task=task or str(card.data.get("task", "species")),
            valid_pct=valid_pct if valid_pct is not None else 0.2,
            seed=seed,
        )
    if task is None:
        pets_named = source not in ("pets", "demo") and not has_class_folders(Path(source))
        species = {"cat", "dog"} <= set(card.classes)
        task = "breed" if pets_named and not species else "species"
    return DataConfig(
        source=source,
        task=task,
        valid_pct=valid_pct if valid_pct is not None else 0.2,
        seed=seed,
        split=valid_pct is not None,
    )


@dataclass(frozen=True)
class AnalysisJob:
    """A checked analysis before any map is computed: model, data, methods and layer."""

    model: LoadedModel
    model_dir: Path
    dataset: Dataset
    methods: tuple[str, ...]
    layer: str
    not_offered: dict[str, str]
    precision: str
    reference: tuple[Sample, ...] = ()
    reference_kind: str = REFERENCE_ANALYSED
    reference_note: str = ""
    layer_choice: LayerChoice | None = None

    @property
    def paths(self) -> list[Path]:
        """The analysed images, in table order."""
        return [s.path for s in self.dataset.valid_samples]

    @property
    def true_idx(self) -> np.ndarray:
        """``(N,)`` the true class index of each analysed image, in table order."""
        classes = self.model.card.classes
        return np.array([classes.index(s.label) for s in self.dataset.valid_samples], dtype=int)


def prepare(model_dir: Path, data_cfg: DataConfig | None, cfg: AnalyzeConfig) -> AnalysisJob:
    """Load and check everything an analysis needs; computes nothing yet.

    Raises:
        ModelFileError, DataSourceError, DownloadError, MethodError, ValueError (precision).
    """
    model = load_model(model_dir, cfg.device)
    dataset: Dataset = load_dataset(data_cfg or training_data_config(model_dir))
    unknown = [name for name in dataset.classes if name not in model.card.classes]
    if unknown:
        raise DataSourceError(
            f"the data has classes the model does not know: {', '.join(unknown[:5])}"
            f"{' …' if len(unknown) > 5 else ''} (the model knows "
            f"{', '.join(model.card.classes[:10])}{' …' if len(model.card.classes) > 10 else ''})"
            "; rename the folders or pass the data the model was made for"
        )
    defaults = tuple(METHODS) if cfg.costly else DEFAULT_METHODS
    methods = cfg.methods if cfg.methods is not None else applicable(model.net, defaults)
    not_offered = unavailable(model.net)
    for name, reason in not_offered.items():
        log.info("%s is not offered for this model: %s", get_method(name).title, reason)
    reference, kind, note = familiarity_reference(model.card, dataset, cfg)
    job = AnalysisJob(
        model=model,
        model_dir=model_dir,
        dataset=dataset,
        methods=tuple(methods),
        layer=model.card.layer if cfg.layer in (None, "", AUTO_LAYER) else cfg.layer,
        not_offered=not_offered,
        precision=resolve_precision(cfg.precision, model.device),
        reference=reference,
        reference_kind=kind,
        reference_note=note,
    )
    if cfg.layer != AUTO_LAYER:
        return job
    choice = choose_job_layer(job, cfg, cfg.layer_n)
    log.info("layer auto: %s (%s)", choice.chosen, choice.reason)
    return replace(job, layer=choice.chosen, layer_choice=choice)


def choose_job_layer(
    job: AnalysisJob,
    cfg: AnalyzeConfig,
    sample_n: int = DEFAULT_LAYER_SAMPLE,
    candidates: Sequence[str] | None = None,
) -> LayerChoice:
    """The candidate layers of the job's model (or ``candidates``) scored on a seeded sample
    of its images.

    Raises:
        MethodError: no gradient method applies, or no image to score.
    """
    model = job.model
    method = next(iter(layer_readers(model.net)), None)
    if method is None:
        raise MethodError("--layer auto needs a gradient method, and none applies to this model")
    paths = job.paths

    def images_for(rows: np.ndarray) -> torch.Tensor:
        return torch.cat(list(load_images(model, [paths[i] for i in rows], cfg.batch_size, 0)))

    quality = cfg.quality or QualityConfig()
    return choose_layer(
        model.net,
        images_for,
        job.true_idx,
        model.card.image_size,
        method,
        candidates=candidates,
        sample_n=sample_n,
        sanity_n=min(quality.sanity_n, 16),
        steps=quality.steps,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
    )


def familiarity_reference(
    card: ModelCard, dataset: Dataset, cfg: AnalyzeConfig
) -> tuple[tuple[Sample, ...], str, str]:
    """The images whose features say what the model knows: a seeded sample of at most
    ``cfg.reference_n`` of its training images when the analysed data is the data it was
    trained on (same folder, split fraction and seed); else the analysed images themselves.

    Returns:
        ``(samples, kind, note)``: the training samples (empty for the analysed images), what
        the reference is, and why it is not the training images.
    """
    trained_on = card.data
    same_data = (
        not card.imported
        and str(trained_on.get("root", "")) == str(dataset.root)
        and int(trained_on.get("seed", -1)) == dataset.seed
        and float(trained_on.get("valid_pct", -1.0)) == dataset.valid_pct
    )
    valid = set(dataset.valid_idx)
    training = [s for i, s in enumerate(dataset.samples) if i not in valid]
    if not same_data or len(training) < 2:
        note = (
            "the model was imported; its training images are not known here"
            if card.imported
            else "the analysed data is not the data the model was trained on"
            if not same_data
            else "the split left fewer than two training images"
        )
        log.info("familiarity: the analysed images are their own reference (%s)", note)
        return (), REFERENCE_ANALYSED, note
    if len(training) > cfg.reference_n:
        picked = np.random.default_rng(cfg.seed).choice(len(training), cfg.reference_n, False)
        training = [training[i] for i in np.sort(picked)]
    return tuple(training), REFERENCE_TRAINING, ""


def explain_rows(
    job: AnalysisJob,
    cfg: AnalyzeConfig,
    rows: Sequence[int] | None = None,
    progress: ProgressFn | None = None,
) -> ExplainedFiles:
    """Logits and every method's maps of the job's images (or of the given rows only)."""
    picked = range(len(job.paths)) if rows is None else rows
    truth = job.true_idx[np.asarray(picked, dtype=int)]
    return explain_files(
        job.model,
        [job.paths[i] for i in picked],
        job.methods,
        job.layer,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        progress=progress,
        precision=job.precision,
        truth=truth,
        per_image=cfg.classes_per_image,
    )


def finish(
    job: AnalysisJob,
    out: Path,
    explained: ExplainedFiles,
    cfg: AnalyzeConfig,
    progress: ProgressFn | None = None,
) -> Manifest:
    """Build the table, score the maps and write the artifacts; call under the folder lock.

    Args:
        job: the prepared analysis.
        out: artifact folder.
        explained: logits and maps of every image of the job, in table order.
        cfg: quality settings and batch size.
        progress: optional callback (message, fraction done).
    """
    model, valid, paths = job.model, job.dataset.valid_samples, job.paths
    table = build_predictions(valid, model.card.classes, explained.logits)
    records = {
        name: get_method(name).record(
            model.net,
            job.layer,
            job.precision,
            explained.seconds.get(name, 0.0),
            tuple(int(d) for d in explained.maps[name].shape),
            maps_file(name),
            classes_file(name) if explained.classes_of(name) is not None else "",
        )
        for name in job.methods
    }
    map_classes = {
        name: slots for name in job.methods if (slots := explained.classes_of(name)) is not None
    }
    layers = {name: record.layer for name, record in records.items()}
    quality: dict[str, dict[str, float]] = {}
    evaluation: dict[str, object] = {}
    true_idx = job.true_idx

    def images_for(rows: np.ndarray) -> torch.Tensor:
        picked = [paths[i] for i in rows]
        return torch.cat(list(load_images(model, picked, cfg.batch_size, 0)))

    watch = Stopwatch()
    if job.layer_choice is not None:
        watch.seconds["layer choice"] = job.layer_choice.seconds
    watch.seconds["maps"] = sum(explained.seconds.values())
    masks = None
    if cfg.quality is not None and len(valid):
        if progress is not None:
            progress("scoring the maps", 0.6)
        if any(s.mask_path for s in valid):
            with watch.stage("reading masks"):
                masks = read_masks([s.mask_path for s in valid], model.card.image_size)
        result = assess(
            model.net,
            explained.maps,
            map_classes,
            layers,
            true_idx,
            masks,
            images_for,
            model.card.image_size,
            cfg.quality,
            job.precision,
        )
        for column, values in result.columns.items():
            table[column] = values
        quality, evaluation = result.quality, result.evaluation
        watch.seconds.update(result.seconds)
    findings, extras = _whole_dataset(job, explained, cfg, watch, progress)
    for column, values in findings.columns.items():
        table[column] = values
    with watch.stage("slices"):
        extras[SLICES_FILE] = _slices(table, explained, paths, job.dataset.root)
    with watch.stage("shortcut search"):
        shortcuts = _shortcut_search(
            job, explained, table, true_idx, masks, images_for, cfg, progress
        )
    metrics = summary(table, primary_method(job.methods))
    dataset = job.dataset
    data_info = {
        "source": dataset.source,
        "root": str(dataset.root),
        "valid_pct": dataset.valid_pct,
        "seed": dataset.seed,
        "task": dataset.task,
        "precision": job.precision,
        **({"shortcut": dataset.shortcut} if dataset.shortcut else {}),
    }
    manifest = write_artifacts(
        out,
        table,
        explained.maps,
        new_manifest(
            model.card,
            job.model_dir,
            len(table),
            records,
            metrics,
            data_info,
            quality,
            evaluation,
            job.not_offered,
            features={"layer": FEATURE_LAYER, "dim": int(explained.features.shape[1])},
            familiarity=findings.familiarity,
            embedding=findings.embedding.info,
            duplicates=findings.duplicates,
            shortcuts=shortcuts,
            timings={stage: round(seconds, 2) for stage, seconds in watch.seconds.items()},
            layer_choice=job.layer_choice,
        ),
        extras,
        map_classes,
    )
    log.info(
        "analysis: %d images, accuracy %.4f%s",
        len(table),
        metrics["accuracy"],
        f", pointing game {metrics['pointing_game']:.4f}" if "pointing_game" in metrics else "",
    )
    return manifest


def _slices(
    table: pd.DataFrame, explained: ExplainedFiles, paths: Sequence[Path], root: Path
) -> pd.DataFrame:
    """Add the image properties and each image's slices to ``table``; the weak slices."""
    for index, name in enumerate(PROPERTY_COLUMNS):
        table[name] = explained.properties[:, index]
    for column, values in file_facts(paths).items():
        table[column] = values.to_numpy()
    for column, labels in slice_columns(table, root).items():
        table[column] = labels
    return weak_slices(table)


def _shortcut_search(
    job: AnalysisJob,
    explained: ExplainedFiles,
    table: pd.DataFrame,
    true_idx: np.ndarray,
    masks: list[np.ndarray | None] | None,
    images_for: Callable[[np.ndarray], torch.Tensor],
    cfg: AnalyzeConfig,
    progress: ProgressFn | None,
) -> ShortcutSearch | None:
    """Shortcut candidates from the primary method's maps, tested causally (or why not)."""
    if cfg.shortcuts is None or not len(table):
        return None
    method = primary_method(job.methods)
    card = job.model.card
    try:
        if not normalisation_recorded(job.model_dir):
            raise PreprocessingError(
                f"{job.model_dir / 'model.json'} records no normalisation (mean, std), so the "
                "images cannot be changed in the model's own preprocessing; re-import the "
                "model with --mean and --std"
            )
        check_preprocessing(card.mean, card.std)
    except PreprocessingError as exc:
        log.warning("shortcut search skipped: %s", exc)
        return ShortcutSearch(method=method, skipped=str(exc))
    mask_paths = [s.mask_path for s in job.dataset.valid_samples]
    complete = all(mask_paths)
    size = card.image_size

    def masks_for(rows: Sequence[int]) -> np.ndarray:
        if masks is not None:  # already read for the quality metrics
            return np.stack([m for m in (masks[i] for i in rows) if m is not None])
        return np.stack(
            [m for m in read_masks([mask_paths[i] for i in rows], size) if m is not None]
        )

    start = time.perf_counter()
    found = find_shortcuts(
        job.model.net,
        explained.maps[method],
        explained.classes_of(method),
        true_idx,
        table[[f"prob_{name}" for name in card.classes]].to_numpy(),
        card.classes,
        images_for,
        masks_for if complete else None,
        replace(cfg.shortcuts, seed=cfg.seed, batch_size=cfg.batch_size),
        scaled_progress(progress, 0.96, 0.99),
    )
    search = ShortcutSearch(
        method=method,
        findings=tuple(found),
        settings=asdict(cfg.shortcuts),
        masks=complete,
        seconds=time.perf_counter() - start,
    )
    log.info(
        "shortcut search: %d candidates, %d shortcuts (%.1f s)",
        len(found),
        len(search.shortcuts),
        search.seconds,
    )
    return search


def _whole_dataset(
    job: AnalysisJob,
    explained: ExplainedFiles,
    cfg: AnalyzeConfig,
    watch: Stopwatch,
    progress: ProgressFn | None,
) -> tuple[DatasetFindings, dict[str, np.ndarray | pd.DataFrame]]:
    """Familiarity, near-duplicates and the 2-D map, and the files that hold them."""
    if progress is not None:
        progress("features of the training images", 0.9)
    reference = None
    if job.reference:
        with watch.stage("reference features"):
            reference = explain_files(
                job.model,
                [s.path for s in job.reference],
                (),
                batch_size=cfg.batch_size,
                num_workers=cfg.num_workers,
                precision=job.precision,
                what="features of the training images",
            )
    if progress is not None:
        progress("familiarity, near-duplicates and the embedding", 0.95)
    with watch.stage("familiarity, duplicates, embedding"):
        findings = find(
            explained,
            reference,
            job.reference_kind,
            job.reference_note,
            cfg.seed,
        )
    extras: dict[str, np.ndarray | pd.DataFrame] = {
        FEATURES_FILE: explained.features.astype(np.float16),
        EMBEDDING_FILE: findings.embedding.coords.astype(np.float32),
        DUPLICATES_FILE: findings.pairs,
    }
    if reference is not None:
        extras[REFERENCE_FEATURES_FILE] = reference.features.astype(np.float16)
        extras[REFERENCE_TABLE_FILE] = pd.DataFrame(
            {
                "path": [str(s.path) for s in job.reference],
                "label": [s.label for s in job.reference],
            }
        )
    return findings, extras


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
        cfg: batch size, workers, device, precision, methods, layer, quality settings.
        progress: optional callback (message, fraction done).

    Raises:
        ModelFileError, DataSourceError, DownloadError, AlreadyRunningError, MethodError.
    """
    job = prepare(model_dir, data_cfg, cfg)
    with folder_lock(out, "analysis"):
        explained = explain_rows(
            job, cfg, progress=scaled_progress(progress, 0.0, 0.6 if cfg.quality else 1.0)
        )
        return finish(job, out, explained, cfg, progress)
