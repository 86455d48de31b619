"""Shared fixtures: tiny generated data, a seeded untrained model, and one quick trained run."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from cam_core.data.demo_data import DemoConfig
from cam_core.data.sources import DataConfig, Dataset, load_dataset
from cam_core.modelling.model_files import ModelCard, save_model
from cam_core.modelling.models import CamNet, build_body

TINY_SIZE = 48

# Session fixtures that train a model: the tests that use them (and the real-browser tests) are
# marked ``slow``; ``make test-fast`` and the mutation runs skip them.
SLOW_FIXTURES = frozenset({"quick_home", "trained_species_run", "shortcut_run", "vit_home"})

# Set by ``make mutate``: each mutant runs in a new pytest session, so session fixtures are built
# once into this folder (by the unmutated code, in mutmut's first run) and reused from there.
FIXTURE_CACHE = "CAM_LENS_FIXTURE_CACHE"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker(
            "browser"
        ):
            item.add_marker(pytest.mark.slow)
    _fastest_first_under_mutation(items)


def _fastest_first_under_mutation(items: list[pytest.Item]) -> None:
    """In a mutation run (``tests/mutate.py``), run each file's tests fastest first, by the
    durations mutmut recorded: a mutant is killed by the first test that fails (``-x``), so a
    quick test that catches it saves running the slow ones. Files keep their order (their
    module fixtures are built once)."""
    stats = Path("mutmut-stats.json")
    if not os.environ.get("MUTANT_UNDER_TEST") or not stats.exists():
        return
    durations: dict[str, float] = json.loads(stats.read_text()).get("duration_by_test", {})
    files = list(dict.fromkeys(item.nodeid.split("::")[0] for item in items))
    items.sort(
        key=lambda item: (
            files.index(item.nodeid.split("::")[0]),
            durations.get(item.nodeid, float("inf")),
        )
    )


def _fixture_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """A folder made by ``build(folder)``: fresh per session, or reused from ``$FIXTURE_CACHE``."""
    cache = os.environ.get(FIXTURE_CACHE)
    if not cache:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    Path(cache).mkdir(parents=True, exist_ok=True)
    folder, done = Path(cache) / name, Path(cache) / f"{name}.done"
    # Built in place (artifacts record absolute paths), under a lock: two mutants run at once.
    with open(Path(cache) / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test touches the user's real ~/.cache/cam-lens."""
    home = tmp_path_factory.getbasetemp() / "cam_home"
    monkeypatch.setenv("CAM_LENS_HOME", str(home))
    # The dashboard opens folders under every test's temporary folders (tests of the shared
    # folders set their own roots).
    monkeypatch.setenv("CAM_LENS_ROOTS", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """24 generated pictures (4 per breed, 12 per species) at 48 px, with masks, 20% validation."""

    def config(cache: Path) -> DataConfig:
        return DataConfig(
            source="demo", cache_root=cache, demo=DemoConfig(n_per_breed=4, size=TINY_SIZE)
        )

    cache = _fixture_folder(tmp_path_factory, "demo_cache", lambda f: load_dataset(config(f)))
    return load_dataset(config(cache))


def make_model(
    folder: Path,
    classes: tuple[str, ...] = ("cat", "dog"),
    seed: int = 0,
    image_size: int = TINY_SIZE,
    data: dict | None = None,
    arch: str = "democnn2",
) -> ModelCard:
    """Save a seeded, untrained demo CNN (``arch``) with a CAM head."""
    torch.manual_seed(seed)
    net = CamNet(build_body(arch), len(classes))
    # Random BN statistics make the maps differ per class and per image.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    card = ModelCard(
        arch=arch, n_features=128, classes=classes, image_size=image_size, data=data or {}
    )
    return save_model(net, card, folder)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Dataset) -> Path:
    data = {"source": "demo", "root": str(tiny_dataset.root), "valid_pct": 0.2, "seed": 42}
    return _fixture_folder(tmp_path_factory, "tiny_model", lambda f: make_model(f, data=data))


@pytest.fixture(scope="session")
def tiny_artifacts_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    from cam_core.analysis.pipeline import AnalyzeConfig, analyze

    return _fixture_folder(
        tmp_path_factory,
        "tiny_artifacts",
        lambda f: analyze(tiny_model_dir, f, cfg=AnalyzeConfig(batch_size=4, num_workers=0)),
    )


@pytest.fixture(scope="session")
def quick_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``$CAM_LENS_HOME`` with real ``demo --quick`` runs of both tasks in ``demo/<task>``
    (generated data, training, analysis with every method)."""
    from cam_core.analysis.demo import run_all_demos

    cache = _fixture_folder(tmp_path_factory, "quick_cache", lambda f: None)
    return _fixture_folder(
        tmp_path_factory,
        "quick_home",
        lambda f: run_all_demos(f / "demo", quick=True, console=False, cache_root=cache),
    )


@pytest.fixture(scope="session")
def quick_run(quick_home: Path) -> Path:
    """The quick species run (``model/`` and ``artifacts/``)."""
    return quick_home / "demo" / "species"


@pytest.fixture(scope="session")
def quick_breed_run(quick_home: Path) -> Path:
    """The quick breed run (``model/`` and ``artifacts/``)."""
    return quick_home / "demo" / "breed"


@pytest.fixture(scope="session")
def imported_home(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Dataset) -> Path:
    """A ``$CAM_LENS_HOME`` with two imported torchvision models analysed on the tiny data:
    ``imports/mobilenet`` (no CAM head: gradient methods only) and ``imports/resnet``
    (exact CAM with a bias)."""
    from safetensors.torch import save_file
    from torchvision import models as tv_models

    from cam_core.analysis.pipeline import AnalyzeConfig, analyze, folder_data_config
    from cam_core.evaluation.suite import QualityConfig
    from cam_core.modelling.importing import ImportConfig, import_model

    def build(home: Path) -> None:
        for name, arch, quality in (
            ("mobilenet", "mobilenet_v3_small", QualityConfig(sample_n=6, sanity_n=4)),
            ("resnet", "resnet18", None),
        ):
            torch.manual_seed(0)
            model = tv_models.get_model(arch, weights=None, num_classes=2)
            weights = home / f"{name}.safetensors"
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
            run = home / "imports" / name
            import_model(ImportConfig(arch, weights, ("cat", "dog"), image_size=64), run / "model")
            analyze(
                run / "model",
                run / "artifacts",
                folder_data_config(run / "model", str(tiny_dataset.root)),
                AnalyzeConfig(batch_size=8, num_workers=0, quality=quality),
            )

    return _fixture_folder(tmp_path_factory, "imported_home", build)


VIT_ARCH = "timm:deit_tiny_distilled_patch16_224"
"""The transformer of :func:`vit_home`: a DeiT with class and distillation tokens."""


@pytest.fixture(scope="session")
def vit_home(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Dataset) -> Path:
    """A ``$CAM_LENS_HOME`` with a randomly initialised timm DeiT (two prefix tokens) built for
    64 px, imported and analysed on the tiny data with ``--layer auto``: ``imports/vit``."""
    import timm
    from safetensors.torch import save_file

    from cam_core.analysis.pipeline import AnalyzeConfig, analyze, folder_data_config
    from cam_core.evaluation.suite import QualityConfig
    from cam_core.modelling.importing import ImportConfig, import_model

    def build(home: Path) -> None:
        torch.manual_seed(0)
        model = timm.create_model(
            VIT_ARCH.removeprefix("timm:"), pretrained=False, num_classes=2, img_size=64
        )
        weights = home / "vit.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        run = home / "imports" / "vit"
        import_model(ImportConfig(VIT_ARCH, weights, ("cat", "dog"), image_size=64), run / "model")
        analyze(
            run / "model",
            run / "artifacts",
            folder_data_config(run / "model", str(tiny_dataset.root)),
            AnalyzeConfig(
                batch_size=8,
                num_workers=0,
                layer="auto",
                layer_n=8,
                quality=QualityConfig(sample_n=6, sanity_n=4, steps=8),
            ),
        )

    return _fixture_folder(tmp_path_factory, "vit_home", build)


@pytest.fixture(scope="session")
def trained_species_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained species demo (the demo preset on its 2,004 images, about a minute), analysed
    with exact CAM only: ``model/`` and ``artifacts/``."""
    from dataclasses import replace

    from cam_core.analysis.demo import demo_configs

    data_cfg, train_cfg = demo_configs(False, "species")
    cache = _fixture_folder(tmp_path_factory, "trained_cache", lambda f: None)
    data_cfg = replace(data_cfg, cache_root=cache)
    return _fixture_folder(
        tmp_path_factory, "trained_species", lambda f: _train_and_analyse(f, data_cfg, train_cfg)
    )


def _train_and_analyse(run: Path, data_cfg: DataConfig, train_cfg: Any) -> None:
    """Train on ``data_cfg`` and analyse with exact CAM only: ``run/model``, ``run/artifacts``."""
    from dataclasses import replace

    from cam_core.analysis.pipeline import AnalyzeConfig, analyze
    from cam_core.modelling.training import train_model

    dataset = load_dataset(data_cfg)
    train_model(dataset, train_cfg, run / "model", console=False)
    analyze(
        run / "model",
        run / "artifacts",
        replace(data_cfg, source=str(dataset.root)),
        AnalyzeConfig(methods=("cam",), quality=None, num_workers=0),
    )


@pytest.fixture()
def format_2_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """Copies an artifact folder as an analysis made before features were stored (format 2)."""

    def copy(artifacts: Path) -> Path:
        old = Path(shutil.copytree(artifacts, tmp_path / f"format2-{artifacts.parent.name}"))
        manifest = json.loads((old / "manifest.json").read_text())
        for name in manifest["extras"]:
            manifest["files"].pop(name, None)
        manifest.update(
            format_version=2,
            extras={},
            familiarity=None,
            embedding={},
            duplicates={},
            shortcuts=None,
        )
        (old / "manifest.json").write_text(json.dumps(manifest))
        return old

    return copy


@pytest.fixture(scope="session")
def shortcut_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short training (4 + 3 epochs, 150 images per breed, about 45 s) on the breed demo with
    the planted shortcut, analysed with exact CAM only: ``model/`` and ``artifacts/``."""
    from dataclasses import replace

    from cam_core.analysis.demo import demo_configs

    data_cfg, train_cfg = demo_configs(False, "breed", shortcut=True)
    data_cfg = replace(
        data_cfg,
        cache_root=_fixture_folder(tmp_path_factory, "shortcut_cache", lambda f: None),
        demo=replace(data_cfg.demo, n_per_breed=150),
    )
    train_cfg = replace(train_cfg, epochs1=4, epochs2=3, seed=1)
    return _fixture_folder(
        tmp_path_factory, "shortcut_run", lambda f: _train_and_analyse(f, data_cfg, train_cfg)
    )
