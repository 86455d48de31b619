"""Data sources: Oxford-IIIT Pet (the tutorial's data), local folders, and the generated demo.

Every source becomes a :class:`Dataset`: labelled samples plus a seeded validation split, so
training and analysis always agree on which images are validation images.
"""

from __future__ import annotations

import logging
import re
import urllib.error
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cam_core.data.demo_data import DemoConfig, generate_demo, planted_shortcut
from cam_core.errors import DataSourceError, DownloadError, ImageRejectedError
from cam_core.intake.images import sniff_format, square_resize
from cam_core.locations import home

__all__ = [
    "TASKS",
    "DataConfig",
    "Dataset",
    "Sample",
    "has_class_folders",
    "load_dataset",
    "pets_label",
    "read_mask",
    "read_masks",
    "scan_folder",
    "split_valid",
]

log = logging.getLogger(__name__)

_BREED_SUFFIX = re.compile(r"_\d+$")
TASKS = ("species", "breed")


@dataclass(frozen=True)
class Sample:
    """One labelled picture.

    Attributes:
        path: the image file.
        label: class name.
        breed: finer label when known (Pets: file name without ``_<n>``).
        mask_path: ground-truth mask (Pets trimap or demo part mask) when one exists.
    """

    path: Path
    label: str
    breed: str | None = None
    mask_path: Path | None = None


@dataclass(frozen=True)
class Dataset:
    """Samples, class order and the validation split of one data source."""

    source: str
    root: Path
    samples: tuple[Sample, ...]
    classes: tuple[str, ...]
    valid_idx: tuple[int, ...]
    valid_pct: float = 0.2
    seed: int = 42
    task: str = "species"
    shortcut: dict[str, Any] | None = None
    """The demo's planted shortcut (:func:`cam_core.data.demo_data.planted_shortcut`)."""

    @property
    def valid_samples(self) -> tuple[Sample, ...]:
        """The validation samples, in split order."""
        return tuple(self.samples[i] for i in self.valid_idx)


@dataclass(frozen=True)
class DataConfig:
    """Which data to use and how to split it.

    Attributes:
        source: ``"pets"``, ``"demo"`` or a folder path.
        task: ``"species"`` (cat vs dog, the tutorial's task) or ``"breed"`` (the file name
            without ``_<n>``); only folders in the Pets naming have breeds.
        valid_pct: share of images held out for validation.
        seed: seed of the split (and of the demo generator).
        cache_root: where generated demo data is written once and reused.
        demo: generator settings for the ``demo`` source.
        split: hold out ``valid_pct`` for validation; ``False`` puts every image, in file
            order, in the analysed set (a model trained elsewhere has no training split here).
    """

    source: str = "demo"
    task: str = "species"
    valid_pct: float = 0.2
    seed: int = 42
    cache_root: Path = field(default_factory=home)
    demo: DemoConfig = field(default_factory=DemoConfig)
    split: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")


def pets_label(file_name: str) -> tuple[str, str]:
    """Label a file by the Oxford-IIIT Pet convention.

    Returns:
        ``(label, breed)``: ``"cat"`` when the name starts with an upper-case letter, else
        ``"dog"``; the breed is the stem without its trailing ``_<number>``.
    """
    stem = Path(file_name).stem
    label = "cat" if stem[:1].isupper() else "dog"
    return label, _BREED_SUFFIX.sub("", stem)


def split_valid(n: int, valid_pct: float, seed: int) -> tuple[int, ...]:
    """Seeded random validation indices (sorted), like fastai's ``RandomSplitter``.

    Raises:
        DataSourceError: a split that leaves no training or no validation image.
    """
    n_valid = round(n * valid_pct)
    if not 0 < n_valid < n:
        raise DataSourceError(
            f"{n} images with valid_pct={valid_pct} leaves no training or validation image; "
            "add images or change the split"
        )
    order = np.random.default_rng(seed).permutation(n)
    return tuple(sorted(int(i) for i in order[:n_valid]))


def _is_image(path: Path, counts: Counter[str]) -> bool:
    """Cheap check (magic bytes and header) that a file is a readable image; counts skips."""
    if path.name.startswith("."):
        counts["hidden"] += 1
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
        sniff_format(head)
        with Image.open(path) as img:
            img.size  # noqa: B018 - parsing the header is the check
    except ImageRejectedError:
        counts["not an image"] += 1
        return False
    except Exception:  # noqa: BLE001 - any header failure means the file is unreadable
        counts["unreadable"] += 1
        return False
    return True


def _image_files(folder: Path, counts: Counter[str]) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if p.is_file() and _is_image(p, counts)]


def _find_mask(root: Path, image: Path) -> Path | None:
    for candidate in (
        root / "annotations" / "trimaps" / f"{image.stem}.png",
        root / "annotations" / "masks" / image.name,
    ):
        if candidate.is_file():
            return candidate
    return None


def scan_folder(root: Path, task: str = "species") -> tuple[list[Sample], tuple[str, ...]]:
    """Find labelled images in a local folder.

    Accepted layouts: the Pets layout (``images/`` plus optional ``annotations/trimaps``), a
    flat folder in the Pets naming convention, or one sub-folder per class (two or more).
    Hidden files, non-images and unreadable images are skipped and counted in the log.

    Args:
        root: the folder.
        task: ``species`` (Pets naming: upper-case first letter = cat) or ``breed`` (the
            file name without ``_<n>``; needs Pets naming).

    Returns:
        ``(samples, classes)`` with classes sorted by name.

    Raises:
        DataSourceError: missing folder, no images, or fewer than two classes.
    """
    if not root.is_dir():
        raise DataSourceError(f"data folder {root} does not exist or is not a folder")
    counts: Counter[str] = Counter()
    images_dir = root / "images" if (root / "images").is_dir() else root
    class_dirs = _class_dirs(images_dir, counts)
    samples: list[Sample]
    if len(class_dirs) >= 2:
        if task == "breed":
            raise DataSourceError(
                f"{root} has one sub-folder per class, so it has no breeds; the breed task "
                "needs Pets-named files (Breed_name_1.jpg), or use --task species"
            )
        samples = [Sample(path=f, label=d.name) for d, files in class_dirs for f in files]
    else:
        samples = []
        for file in _image_files(images_dir, counts):
            species, breed = pets_label(file.name)
            label = breed if task == "breed" else species
            samples.append(Sample(file, label, breed, _find_mask(root, file)))
    for reason, count in sorted(counts.items()):
        log.warning("skipped %d file(s) in %s: %s", count, root, reason)
    if not samples:
        raise DataSourceError(
            f"no images found in {root}; expected Pets-named files or one sub-folder per class"
        )
    classes = tuple(sorted({s.label for s in samples}))
    if len(classes) < 2:
        raise DataSourceError(
            f"{root} has only the class {classes[0]!r}; a classifier needs at least two "
            "(Pets naming: upper-case first letter = cat, or one sub-folder per class)"
        )
    return samples, classes


def _download_pets() -> Path:
    from fastai.data.external import URLs, untar_data

    try:
        return Path(untar_data(URLs.PETS))
    except (urllib.error.URLError, OSError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"downloading Oxford-IIIT Pet from {URLs.PETS} failed ({reason}); "
            "pass --data with a local folder (Pets naming or one sub-folder per class), "
            "or run the offline demo: python -m cam_core demo"
        ) from None


def load_dataset(cfg: DataConfig) -> Dataset:
    """Resolve a data source into a labelled, split :class:`Dataset`.

    Raises:
        DownloadError: ``pets`` could not be downloaded.
        DataSourceError: the folder is missing, empty or has fewer than two classes.
    """
    if cfg.source == "pets":
        root = _download_pets()
    elif cfg.source == "demo":
        root = generate_demo(cfg.cache_root, cfg.demo)
    else:
        root = Path(cfg.source).expanduser().resolve()
    samples, classes = scan_folder(root, cfg.task)
    log.info(
        "%s (%s task): %d images, classes %s",
        cfg.source,
        cfg.task,
        len(samples),
        ", ".join(classes),
    )
    if cfg.split:
        valid_idx, valid_pct = split_valid(len(samples), cfg.valid_pct, cfg.seed), cfg.valid_pct
    else:
        valid_idx, valid_pct = tuple(range(len(samples))), 1.0
    return Dataset(
        cfg.source,
        root,
        tuple(samples),
        classes,
        valid_idx,
        valid_pct,
        cfg.seed,
        cfg.task,
        planted_shortcut(root),
    )


def has_class_folders(root: Path) -> bool:
    """The folder holds one sub-folder of images per class (rather than Pets-named files)."""
    if not root.is_dir():
        return False
    images_dir = root / "images" if (root / "images").is_dir() else root
    return len(_class_dirs(images_dir, Counter())) >= 2


def _class_dirs(images_dir: Path, counts: Counter[str]) -> list[tuple[Path, list[Path]]]:
    subdirs = sorted(p for p in images_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [(d, files) for d in subdirs if (files := _image_files(d, counts))]


def read_mask(path: Path, size: int) -> np.ndarray:
    """Read a ground-truth mask as the model sees it (square crop, resized).

    Pets trimaps (values 1 = pet, 2 = background, 3 = border) keep 1 and 3; other masks keep
    pixels brighter than 127.

    Returns:
        bool array of shape ``(size, size)``.
    """
    with Image.open(path) as img:
        gray = square_resize(img.convert("L"), size, Image.Resampling.NEAREST)
    arr = np.asarray(gray)
    if arr.size and arr.max() <= 3:
        return (arr == 1) | (arr == 3)
    return arr > 127


def read_masks(paths: Sequence[str | Path | None], size: int) -> list[np.ndarray | None]:
    """:func:`read_mask` for many images; ``None`` where an image has no mask.

    Raises:
        DataSourceError: a mask file that is missing or unreadable.
    """
    masks: list[np.ndarray | None] = []
    for path in paths:
        if path is None or (isinstance(path, float) and np.isnan(path)):
            masks.append(None)
            continue
        try:
            masks.append(read_mask(Path(path), size))
        except (OSError, ValueError) as exc:
            raise DataSourceError(
                f"cannot read the mask {path} ({exc}); regenerate the data"
            ) from None
    return masks
