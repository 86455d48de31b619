from __future__ import annotations

import logging
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cam_core.data.sources import (
    DataConfig,
    has_class_folders,
    load_dataset,
    pets_label,
    read_mask,
    scan_folder,
    split_valid,
)
from cam_core.errors import DataSourceError, DownloadError


@pytest.mark.parametrize(
    ("name", "label", "breed"),
    [
        ("Abyssinian_1.jpg", "cat", "Abyssinian"),
        ("Egyptian_Mau_203.jpg", "cat", "Egyptian_Mau"),
        ("american_bulldog_12.jpg", "dog", "american_bulldog"),
        ("yorkshire_terrier_9.png", "dog", "yorkshire_terrier"),
    ],
)
def test_pets_label_follows_the_case_convention(name: str, label: str, breed: str) -> None:
    assert pets_label(name) == (label, breed)


def _png(path: Path, colour: tuple[int, int, int] = (200, 10, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 16), colour).save(path)


def test_subfolder_layout_any_number_of_classes_and_skips_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for cls in ("ant", "bee", "wasp"):
        for i in range(3):
            _png(tmp_path / cls / f"{i}.png")
    (tmp_path / "bee" / ".hidden.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "bee" / "notes.txt").write_text("not an image")
    (tmp_path / "wasp" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    caplog.set_level(logging.WARNING)
    samples, classes = scan_folder(tmp_path)
    assert classes == ("ant", "bee", "wasp")
    assert len(samples) == 9
    assert {s.label for s in samples} == set(classes)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "skipped 1 file(s)" in messages
    for reason in ("hidden", "not an image", "unreadable"):
        assert reason in messages


def test_flat_pets_naming_with_trimaps(tmp_path: Path) -> None:
    for name in ("Bengal_1.jpg", "Bengal_2.jpg", "pug_1.jpg", "pug_2.jpg"):
        _png(tmp_path / "images" / name)
    trimap = tmp_path / "annotations" / "trimaps" / "Bengal_1.png"
    trimap.parent.mkdir(parents=True)
    Image.fromarray(np.full((16, 20), 2, np.uint8)).save(trimap)
    samples, classes = scan_folder(tmp_path)
    assert classes == ("cat", "dog")
    by_name = {s.path.name: s for s in samples}
    assert by_name["Bengal_1.jpg"].label == "cat"
    assert by_name["Bengal_1.jpg"].breed == "Bengal"
    assert by_name["Bengal_1.jpg"].mask_path == trimap
    assert by_name["Bengal_2.jpg"].mask_path is None
    assert by_name["pug_2.jpg"].label == "dog"
    breeds, breed_classes = scan_folder(tmp_path, "breed")
    assert breed_classes == ("Bengal", "pug")
    assert [s.label for s in breeds] == [s.breed for s in samples]
    assert {s.path.name: s.mask_path for s in breeds} == {s.path.name: s.mask_path for s in samples}


def test_breed_task_needs_pets_naming(tmp_path: Path) -> None:
    for cls in ("ant", "bee"):
        _png(tmp_path / cls / "a.png")
    with pytest.raises(DataSourceError, match="no breeds"):
        scan_folder(tmp_path, "breed")
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        DataConfig(source=str(tmp_path), task="colour")


def test_single_class_and_missing_folders_are_clear_errors(tmp_path: Path) -> None:
    _png(tmp_path / "only" / "pug_1.png")
    _png(tmp_path / "only" / "pug_2.png")
    with pytest.raises(DataSourceError, match="only the class 'dog'"):
        scan_folder(tmp_path / "only")
    with pytest.raises(DataSourceError, match="does not exist"):
        scan_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSourceError, match="no images found"):
        scan_folder(tmp_path / "empty")


def test_split_is_seeded_and_sized() -> None:
    first = split_valid(100, 0.2, seed=42)
    assert first == split_valid(100, 0.2, seed=42)
    assert first != split_valid(100, 0.2, seed=7)
    assert len(first) == 20 and len(set(first)) == 20
    assert all(0 <= i < 100 for i in first)
    with pytest.raises(DataSourceError):
        split_valid(1, 0.2, seed=42)


def test_offline_pets_names_the_download_and_suggests_alternatives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fastai.data.external as external

    def offline(*_args: object, **_kwargs: object) -> Path:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(external, "untar_data", offline)
    with pytest.raises(DownloadError) as info:
        load_dataset(DataConfig(source="pets"))
    message = str(info.value)
    assert "oxford-iiit-pet" in message
    assert "--data" in message and "python -m cam_core demo" in message
    assert "\n" not in message


def test_read_mask_handles_trimaps_and_binary_masks(tmp_path: Path) -> None:
    trimap = np.full((10, 10), 2, np.uint8)
    trimap[2:4, 2:4] = 1
    trimap[4, 2:4] = 3
    Image.fromarray(trimap).save(tmp_path / "t.png")
    mask = read_mask(tmp_path / "t.png", 10)
    assert mask.sum() == 6 and mask[2, 2] and not mask[0, 0]
    binary = np.zeros((10, 10), np.uint8)
    binary[5:, 5:] = 255
    Image.fromarray(binary).save(tmp_path / "b.png")
    assert read_mask(tmp_path / "b.png", 10).sum() == 25


def test_without_a_split_every_image_is_analysed_in_file_order(tmp_path: Path) -> None:
    for cls in ("ant", "bee"):
        for i in range(3):
            _png(tmp_path / cls / f"{i}.png")
    assert has_class_folders(tmp_path)
    data = load_dataset(DataConfig(source=str(tmp_path), split=False))
    assert data.valid_idx == tuple(range(6)) and data.valid_pct == 1.0
    assert [s.path.name for s in data.valid_samples] == ["0.png", "1.png", "2.png"] * 2
    flat = tmp_path / "flat"
    for name in ("Tabby_1.png", "pug_1.png"):
        _png(flat / name)
    assert not has_class_folders(flat) and not has_class_folders(tmp_path / "missing")
