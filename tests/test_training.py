from __future__ import annotations

import importlib.util
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cam_core.data.sources import Dataset
from cam_core.errors import AlreadyRunningError, TrainingError
from cam_core.modelling.model_files import load_model
from cam_core.modelling.models import CamNet, build_body
from cam_core.modelling.training import (
    TrainConfig,
    _build_dataloaders,
    _cam_splitter,
    _fit,
    train_model,
)
from cam_core.storage import folder_lock
from tests.conftest import TINY_SIZE

TINY = TrainConfig(
    arch="democnn2",
    image_size=48,
    batch_size=8,
    epochs1=1,
    epochs2=1,
    pretrained=False,
    num_workers=0,
)


def test_two_stages_save_a_loadable_cam_model_and_report_progress(
    tiny_dataset: Dataset, tmp_path: Path
) -> None:
    seen: list[tuple[str, float]] = []
    card = train_model(
        tiny_dataset,
        TINY,
        tmp_path / "model",
        progress=lambda msg, frac: seen.append((msg, frac)),
        console=False,
    )
    assert {"valid_loss", "valid_accuracy", "stage1_accuracy"} <= set(card.metrics)
    assert card.classes == ("cat", "dog") and card.n_features == 128
    assert card.data["n_valid"] == len(tiny_dataset.valid_idx)
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(m.startswith("stage 1") for m, _ in seen)
    assert any(m.startswith("stage 2") for m, _ in seen)
    loaded = load_model(tmp_path / "model", "cpu")
    assert loaded.net.head[2].bias is None
    assert not any(p.suffix in (".pkl", ".pth") for p in (tmp_path / "model").iterdir())


def test_same_seed_same_weights(tiny_dataset: Dataset, tmp_path: Path) -> None:
    first = train_model(tiny_dataset, TINY, tmp_path / "a", console=False)
    second = train_model(tiny_dataset, TINY, tmp_path / "b", console=False)
    assert first.weights_sha256 == second.weights_sha256


def test_a_second_writer_of_the_same_folder_is_refused(
    tiny_dataset: Dataset, tmp_path: Path
) -> None:
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with folder_lock(tmp_path / "model", "training"):
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        assert held.wait(10)
        with pytest.raises(AlreadyRunningError, match="already running"):
            train_model(tiny_dataset, TINY, tmp_path / "model", console=False)
    finally:
        release.set()
        worker.join()


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        TrainConfig(arch="alexnet")
    with pytest.raises(ValueError, match="epochs2"):
        TrainConfig(epochs2=0)
    with pytest.raises(ValueError, match="head_lr_mult must be positive"):
        TrainConfig(head_lr_mult=0)


def test_the_cam_head_learns_faster_when_asked(tiny_dataset: Dataset, tmp_path: Path) -> None:
    from fastai.vision.all import Learner

    cfg = replace(TINY, head_lr_mult=10.0)
    dls = _build_dataloaders(tiny_dataset, cfg, torch.device("cpu"))
    learn = Learner(dls, CamNet(build_body("democnn2"), 2), splitter=_cam_splitter)
    with learn.no_bar(), learn.no_logging():
        _fit(learn, 1, cfg, 1e-3, cfg.head_lr_mult)
    body, head = (group["lr"] for group in learn.opt.hypers)
    assert head == pytest.approx(10 * body)
    card = train_model(tiny_dataset, cfg, tmp_path / "model", console=False)
    assert card.training["head_lr_mult"] == 10.0
    assert "the new head at 10x the body's learning rate" in card.training["recipe"]
    # Fine-tuning a pretrained body keeps fastai's own split: the recipe does not claim it.
    assert "10x" not in replace(cfg, pretrained=True).recipe


def test_several_processes_without_accelerate_is_one_clear_error(
    tiny_dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        "cam_core.modelling.training.importlib.util.find_spec",
        lambda name: None if name == "accelerate" else real_find_spec(name),
    )
    with pytest.raises(TrainingError, match="pip install accelerate"):
        train_model(tiny_dataset, TINY, tmp_path / "model", console=False)
    assert not (tmp_path / "model" / "model.json").exists()


def test_images_decoded_once_give_the_same_batches_as_the_per_item_pipeline(
    tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images already at the model's size are decoded into memory once; their batches equal
    fastai's DataBlock pipeline (decode, Resize, normalise) image for image."""
    from cam_core.modelling import training

    cfg = TrainConfig(arch="democnn2", image_size=TINY_SIZE, batch_size=4, num_workers=0)
    cpu = torch.device("cpu")
    memory = training._build_dataloaders(tiny_dataset, cfg, cpu)
    assert training._decoded(tiny_dataset.samples, TINY_SIZE) is not None
    assert training._decoded(tiny_dataset.samples, TINY_SIZE + 1) is None  # Resize would act
    monkeypatch.setattr(training, "_decoded", lambda samples, size: None)
    per_item = training._build_dataloaders(tiny_dataset, cfg, cpu)
    for ours, theirs in ((memory.valid, per_item.valid), (memory.train, per_item.train)):
        assert len(ours) == len(theirs)
        assert ours.drop_last == theirs.drop_last and ours.shuffle == theirs.shuffle
    x_mem, y_mem = (torch.cat(parts) for parts in zip(*memory.valid, strict=True))
    x_blk, y_blk = (torch.cat(parts) for parts in zip(*per_item.valid, strict=True))
    assert torch.equal(y_mem, y_blk)
    assert torch.allclose(x_mem, x_blk)
    assert x_mem.shape == (len(tiny_dataset.valid_idx), 3, TINY_SIZE, TINY_SIZE)
