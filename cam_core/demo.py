"""The offline demo preset: generated cartoons → two-stage training → analysis with every
explanation method and the quality metrics, in one call."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from cam_core.artifacts import Manifest
from cam_core.data import DataConfig, load_dataset
from cam_core.demo_data import DemoConfig
from cam_core.methods import METHODS
from cam_core.pipeline import AnalyzeConfig, analyze
from cam_core.progress import ProgressFn, scaled_progress
from cam_core.training import TrainConfig, train_model

__all__ = ["demo_configs", "run_demo"]

log = logging.getLogger(__name__)


_PRESET = TrainConfig(
    arch="democnn",
    image_size=96,
    batch_size=16,
    epochs1=8,
    epochs2=5,
    pretrained=False,
    lr=4e-3,
    num_workers=0,
)


def demo_configs(quick: bool = False) -> tuple[DataConfig, TrainConfig]:
    """The demo preset: generated cartoons and the small CNN trained from scratch on the CPU.

    ``quick`` is a seconds-long version for tests (tiny set, one epoch per stage).
    """
    if quick:
        return (
            DataConfig(source="demo", demo=DemoConfig(n_per_class=24, size=64)),
            replace(_PRESET, image_size=64, epochs1=1, epochs2=1, lr=None),
        )
    return DataConfig(source="demo", demo=DemoConfig()), _PRESET


def run_demo(
    out: Path,
    quick: bool = False,
    progress: ProgressFn | None = None,
    console: bool = True,
    cache_root: Path | None = None,
    seed: int | None = None,
) -> Manifest:
    """Generate the demo data, train both stages and analyse; results in ``out/model`` and
    ``out/artifacts``.

    Args:
        out: the run folder.
        quick: the seconds-long preset (tests).
        progress: optional callback (message, fraction done).
        console: live bars on a terminal (else log lines).
        cache_root: where the generated images are cached (default ``$CAM_LENS_HOME``).
        seed: training seed (default: the preset's, 42); the data stays the same.
    """
    data_cfg, train_cfg = demo_configs(quick)
    if seed is not None:
        train_cfg = replace(train_cfg, seed=seed)
    if cache_root is not None:
        data_cfg = DataConfig(source="demo", demo=data_cfg.demo, cache_root=cache_root)
    if progress is not None:
        progress("generating demo images", 0.0)
    dataset = load_dataset(data_cfg)
    train_model(dataset, train_cfg, out / "model", scaled_progress(progress, 0.02, 0.6), console)
    return analyze(
        out / "model",
        out / "artifacts",
        DataConfig(source=str(dataset.root), valid_pct=data_cfg.valid_pct, seed=data_cfg.seed),
        AnalyzeConfig(methods=tuple(METHODS)),
        progress=scaled_progress(progress, 0.6, 1.0),
    )
