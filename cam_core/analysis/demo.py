"""The offline demo preset: generated cartoon breeds → the tutorial's two training stages →
analysis with every explanation method and the quality metrics, in one call, for either task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cam_core.analysis.artifacts import Manifest
from cam_core.analysis.pipeline import AnalyzeConfig, analyze
from cam_core.data.demo_data import SHORTCUT_BREED, DemoConfig
from cam_core.data.sources import TASKS, DataConfig, load_dataset
from cam_core.evaluation.suite import QualityConfig
from cam_core.modelling.training import TrainConfig, train_model
from cam_core.progress import ProgressFn, scaled_progress

__all__ = ["demo_configs", "run_all_demos", "run_demo"]

log = logging.getLogger(__name__)

_PRESET = TrainConfig(
    arch="democnn2",
    image_size=96,
    batch_size=16,
    epochs1=8,
    epochs2=5,
    pretrained=False,
    lr=4e-3,
    head_lr_mult=10.0,
    num_workers=0,
)


def demo_configs(
    quick: bool = False, task: str = "species", shortcut: bool = False
) -> tuple[DataConfig, TrainConfig]:
    """The demo preset: generated cartoons and the small CNN trained from scratch on the CPU.

    The body is ``democnn2``, whose cells see 27 px (see
    :func:`cam_core.modelling.models.demo_cnn_body`), so each cell's evidence comes from one
    part of the face. Evidence that local covers few of the 144 cells, so the CAM head must
    grow large weights before the mean of a map becomes a confident logit: at the body's
    learning rate that stage ended at 97.5% accuracy (breed, seed 7; 99.25% at 10x) and at
    78-80% on 900 images (90-92% at 10x).
    The breed task trains at 3e-3 (fastai's from-scratch default here) instead of 4e-3: at
    4e-3 the first demo CNN's stage-1 head diverged on one seed of three.

    Args:
        quick: a seconds-long version for tests (48 small images, one epoch per stage).
        task: ``species`` or ``breed``.
        shortcut: plant a mark on most images of one breed
            (:data:`cam_core.data.demo_data.SHORTCUT_BREED`); breed task only.

    Raises:
        ValueError: ``shortcut`` with the species task.
    """
    if shortcut and task != "breed":
        raise ValueError("the planted shortcut marks one breed; use it with --task breed")
    planted = SHORTCUT_BREED if shortcut else ""
    if quick:
        return (
            DataConfig(
                source="demo",
                task=task,
                demo=DemoConfig(n_per_breed=8, size=64, shortcut=planted),
            ),
            replace(_PRESET, image_size=64, epochs1=1, epochs2=1, lr=None),
        )
    preset = _PRESET if task == "species" else replace(_PRESET, lr=3e-3)
    return DataConfig(source="demo", task=task, demo=DemoConfig(shortcut=planted)), preset


def run_demo(
    out: Path,
    quick: bool = False,
    progress: ProgressFn | None = None,
    console: bool = True,
    cache_root: Path | None = None,
    seed: int | None = None,
    task: str = "species",
    shortcut: bool = False,
) -> Manifest:
    """Generate the demo data, train and analyse; results in ``out/model`` and
    ``out/artifacts``.

    Args:
        out: the run folder.
        quick: the seconds-long preset (tests).
        progress: optional callback (message, fraction done).
        console: live bars on a terminal (else log lines).
        cache_root: where the generated images are cached (default ``$CAM_LENS_HOME``).
        seed: training seed (default: the preset's, 42); the data stays the same.
        task: ``species`` (cat vs dog) or ``breed`` (six breeds).
        shortcut: plant a mark on most of one breed's images (breed task only).
    """
    data_cfg, train_cfg = demo_configs(quick, task, shortcut)
    if seed is not None:
        train_cfg = replace(train_cfg, seed=seed)
    if cache_root is not None:
        data_cfg = replace(data_cfg, cache_root=cache_root)
    if progress is not None:
        progress("generating demo images", 0.0)
    dataset = load_dataset(data_cfg)
    train_model(dataset, train_cfg, out / "model", scaled_progress(progress, 0.02, 0.6), console)
    return analyze(
        out / "model",
        out / "artifacts",
        replace(data_cfg, source=str(dataset.root)),
        # fp32 on every machine: bf16 exists on some CPUs only, and the demo's figures are
        # compared across machines.
        # The demo shows the evidence: its full sample, whatever it costs.
        AnalyzeConfig(costly=True, precision="fp32", quality=QualityConfig(max_cost=None)),
        progress=scaled_progress(progress, 0.6, 1.0),
    )


def run_all_demos(
    root: Path,
    quick: bool = False,
    progress: ProgressFn | None = None,
    console: bool = True,
    cache_root: Path | None = None,
    tasks: Sequence[str] = TASKS,
) -> dict[str, Manifest]:
    """:func:`run_demo` for each task (every task by default, in :data:`TASKS` order: the
    species demo is ready first), in ``root/<task>``; all share the generated images. Each
    progress message starts with its task."""
    manifests = {}
    for index, task in enumerate(tasks):
        part = scaled_progress(progress, index / len(tasks), (index + 1) / len(tasks))
        manifests[task] = run_demo(
            root / task, quick, _named(part, task), console, cache_root=cache_root, task=task
        )
    return manifests


def _named(progress: ProgressFn | None, task: str) -> ProgressFn | None:
    if progress is None:
        return None
    report = progress
    return lambda message, fraction: report(f"{task} demo: {message}", fraction)
