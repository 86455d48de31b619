"""Weak slices: image properties, slice labels, and a slice made to fail coming first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageFilter

from cam_core.evaluation.slices import (
    PROPERTY_COLUMNS,
    file_facts,
    pixel_properties,
    slice_columns,
    weak_slices,
)
from cam_core.review.selection import GalleryFilter, filter_predictions


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


def test_pixel_properties_measure_what_they_name() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    red = Image.new("RGB", (32, 32), (220, 20, 20))
    blurred = noise.filter(ImageFilter.GaussianBlur(2))
    black = Image.new("RGB", (32, 32))
    batch = torch.stack([_tensor(i) for i in (noise, blurred, grey, red, black)])
    values = pd.DataFrame(pixel_properties(batch), columns=list(PROPERTY_COLUMNS))
    noisy, blurred, flat, coloured, black = (values.iloc[i] for i in range(5))
    assert black["brightness"] == pytest.approx(0.0) and flat["brightness"] == pytest.approx(
        128 / 255, abs=1e-3
    )
    assert flat["contrast"] == pytest.approx(0.0, abs=1e-6) and noisy["contrast"] > 0.1
    assert flat["colourfulness"] == pytest.approx(0.0, abs=1e-6)
    assert coloured["colourfulness"] == pytest.approx(
        0.3 * np.hypot(200 / 255, 100 / 255), rel=1e-3
    )
    assert blurred["sharpness"] < noisy["sharpness"] / 10
    green = pixel_properties(_tensor(Image.new("RGB", (8, 8), (0, 255, 0)))[None])
    assert green[0, 0] == pytest.approx(0.587, abs=1e-4)  # Rec. 601 luma


def _table_of(folder: Path, n: int = 80, dark_share: float = 0.25) -> pd.DataFrame:
    """Images of which the darkest quarter are the model's errors (darkened on purpose)."""
    rng = np.random.default_rng(1)
    paths, tensors, correct = [], [], []
    for i in range(n):
        dark = i < n * dark_share
        level = 20 if dark else int(rng.integers(90, 230))
        pixels = np.clip(rng.normal(level, 12, (24, 32, 3)), 0, 255).astype(np.uint8)
        path = folder / ("jpegs" if i % 2 else "pngs") / f"img_{i:03d}.{'jpg' if i % 2 else 'png'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        paths.append(path)
        tensors.append(torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1))
        correct.append(not dark and rng.random() > 0.05)
    table = pd.DataFrame({"path": [str(p) for p in paths], "correct": correct})
    for name, values in zip(
        PROPERTY_COLUMNS, pixel_properties(torch.stack(tensors)).T, strict=True
    ):
        table[name] = values
    for column, values in file_facts(paths).items():
        table[column] = values.to_numpy()
    for column, labels in slice_columns(table, folder).items():
        table[column] = labels
    return table


def test_darkened_images_the_model_gets_wrong_are_the_weakest_slice(tmp_path: Path) -> None:
    table = _table_of(tmp_path)
    slices = weak_slices(table)
    top = slices.iloc[0]
    assert top["feature"] == "brightness" and top["value"].startswith("brightness Q1")
    assert top["n"] == 20 and top["errors"] == 20 and bool(top["worse"])
    assert top["low"] > top["rest_rate"]
    outside = table[table["slice_brightness"] != top["value"]]
    assert top["rest_rate"] == pytest.approx(1 - outside["correct"].mean())
    assert set(slices["feature"]) >= {"brightness", "folder", "format", "contrast"}
    assert table["format"].tolist()[:2] == ["PNG", "JPEG"]
    assert (table["width"] == 32).all() and (table["slice_aspect"] == "landscape").all()
    flt = GalleryFilter.from_query(GalleryFilter(slice=("brightness", top["value"])).to_query())
    shown = filter_predictions(table.assign(confidence=0.5, loss=0.0), flt)
    assert len(shown) == 20 and not shown["correct"].any()


def test_small_slices_are_not_ranked(tmp_path: Path) -> None:
    table = _table_of(tmp_path, n=30)
    assert weak_slices(table, min_images=20).empty
    assert not weak_slices(table, min_images=5).empty
    # a slice of nearly every image has too small a rest to compare with
    table["slice_format"] = ["PNG"] * 27 + ["JPEG"] * 3
    assert "format" not in set(weak_slices(table, min_images=5)["feature"])


def test_a_file_that_no_longer_opens_is_listed_as_unreadable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    facts = file_facts([broken, tmp_path / "gone.png"])
    assert facts["format"].tolist() == ["unreadable", "unreadable"]
    assert facts["width"].tolist() == [0, 0] and facts["height"].tolist() == [0, 0]


def test_weak_slice_rows_by_hand_on_the_size_limits() -> None:
    from cam_core.evaluation.shortcuts import wilson_interval

    # slice a: 20 images, 8 wrong; slice b: 20 images, 2 wrong; slice c: 19 images (too few)
    table = pd.DataFrame(
        {
            "correct": [False] * 8 + [True] * 12 + [False] * 2 + [True] * 18 + [True] * 19,
            "slice_kind": ["a"] * 20 + ["b"] * 20 + ["c"] * 19,
            "slice_same": ["x"] * 59,  # one value: no slice to compare
        }
    )
    ranked = weak_slices(table, min_images=20)
    assert ranked["value"].tolist() == ["a", "b"]
    a = ranked.iloc[0]
    assert (a["feature"], a["n"], a["errors"]) == ("kind", 20, 8)
    assert a["error_rate"] == 0.4 and a["rest_rate"] == pytest.approx(2 / 39)
    assert a["gap"] == pytest.approx(0.4 - 2 / 39)
    assert (a["low"], a["high"]) == pytest.approx(wilson_interval(8, 20))
    assert bool(a["worse"]) and not bool(ranked.iloc[1]["worse"])
    assert ranked.iloc[1]["rest_rate"] == pytest.approx(8 / 39)
    # the rest must hold min_images too: with 40 the other 19 + 20 are enough, with 40 not
    assert weak_slices(table, min_images=40).empty
    assert list(weak_slices(table, min_images=39)["value"]) == []


def test_worse_slices_come_before_a_larger_gap_that_is_not_significant() -> None:
    table = pd.DataFrame(
        {
            "correct": [False] * 12 + [True] * 88 + [False] * 1 + [True] * 3 + [True] * 96,
            "slice_big": ["big"] * 100 + ["rest"] * 100,
            "slice_tiny": ["other"] * 100 + ["tiny"] * 4 + ["other"] * 96,
        }
    )
    ranked = weak_slices(table, min_images=4)
    first = ranked.iloc[0]
    assert (first["feature"], first["value"], bool(first["worse"])) == ("big", "big", True)
    tiny = ranked[ranked["value"] == "tiny"].iloc[0]
    assert tiny["gap"] > first["gap"] and not bool(tiny["worse"])


def test_bins_aspects_and_sizes() -> None:
    table = pd.DataFrame(
        {
            "width": [100, 110, 111, 100, 90, 100, 100, 100],
            "height": [100, 100, 100, 110, 100, 0, 100, 100],
            "format": ["JPEG"] * 8,
            "breed": ["Tabby", None, "pug", "pug", "pug", "pug", "pug", "pug"],
            "brightness": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, np.nan],
            "contrast": [0.5, 0.5, 0.25, 0.25, 0.5, 0.5, 0.75, 1.0],
        }
    )
    slices = slice_columns(table)
    assert slices["slice_aspect"] == [
        "square",
        "square",
        "landscape",
        "square",  # 100/110 is exactly 1/1.1: square
        "portrait",
        "unknown",
        "square",
        "square",
    ]
    assert slices["slice_breed"][:3] == ["Tabby", "unknown", "pug"]
    assert slices["slice_format"] == ["JPEG"] * 8
    assert slices["slice_contrast"][:3] == ["contrast 0.5", "contrast 0.5", "contrast 0.25"]
    bright = slices["slice_brightness"]
    assert bright[0] == "brightness Q1 (0.1–0.2)" and bright[1] == bright[0]
    assert bright[6] == "brightness Q4 (0.6–0.7)" and bright[7] == "brightness unknown"
    # six sizes (more than four): binned by the side of the area
    assert slices["slice_size"][0].startswith("side Q")
    assert "slice_folder" not in slices
    few = slice_columns(table.iloc[[0, 6, 7]])
    assert few["slice_size"] == ["100×100"] * 3


def test_sharpness_and_colourfulness_by_hand() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.random((3, 6, 7)).astype(np.float32)
    values = pixel_properties(torch.from_numpy(pixels)[None])[0]
    luma = 0.299 * pixels[0] + 0.587 * pixels[1] + 0.114 * pixels[2]
    lap = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * luma[1:-1, 1:-1]
    assert values[3] == pytest.approx(lap.var(ddof=1), rel=1e-4)
    assert values[1] == pytest.approx(luma.std(ddof=1), rel=1e-4)
    rg, yb = pixels[0] - pixels[1], 0.5 * (pixels[0] + pixels[1]) - pixels[2]
    colourful = np.sqrt(rg.var(ddof=1) + yb.var(ddof=1)) + 0.3 * np.hypot(rg.mean(), yb.mean())
    assert values[2] == pytest.approx(colourful, rel=1e-4)
    assert values.dtype == np.float32


def test_folders_and_side_bins(tmp_path: Path) -> None:
    paths = [
        tmp_path / "a" / "1.png",
        tmp_path / "b" / "c" / "2.png",
        tmp_path / "3.png",
        Path("/elsewhere/4.png"),
        tmp_path / "a" / "5.png",
    ]
    sides = [10, 20, 30, 40, 50]
    table = pd.DataFrame(
        {
            "path": [str(p) for p in paths],
            "width": sides,
            "height": sides,
            "brightness": ["0.5", "n/a", "0.25", "0.5", "0.75"],
        }
    )
    slices = slice_columns(table, tmp_path)
    assert slices["slice_folder"] == ["a", "b/c", ".", "/elsewhere", "a"]
    assert slices["slice_size"] == [
        "side Q1 (10–20)",
        "side Q1 (10–20)",
        "side Q2 (30–30)",
        "side Q3 (40–40)",
        "side Q4 (50–50)",
    ]
    assert slices["slice_brightness"][1] == "brightness unknown"
    assert slices["slice_brightness"][0] == "brightness 0.5"
    one_folder = slice_columns(table.iloc[[0, 4]], tmp_path)
    assert "slice_folder" not in one_folder and "slice_breed" not in one_folder
    assert slice_columns(table.iloc[:0], tmp_path) == {
        "slice_size": [],
        "slice_aspect": [],
        "slice_brightness": [],
    }


def test_slice_edges_rest_sizes_skipped_values_and_a_fresh_index() -> None:
    # 40 images: "a" (5) and "c" (15) are too small; "b", "x" and "y" (20 each) leave a rest
    # of exactly min_images. The ten errors are b's first ten, which x holds too.
    table = pd.DataFrame(
        {
            "correct": [True] * 5 + [False] * 10 + [True] * 25,
            "slice_half": ["x"] * 20 + ["y"] * 20,
            "slice_kind": ["a"] * 5 + ["b"] * 20 + ["c"] * 15,
        }
    )
    ranked = weak_slices(table, min_images=20)
    # found in the order x, y, b; ranked x, b (worse, same gap), then y
    assert list(zip(ranked["feature"], ranked["value"], strict=True)) == [
        ("half", "x"),
        ("kind", "b"),
        ("half", "y"),
    ]
    assert list(ranked.index) == [0, 1, 2]


def test_sizes_with_exactly_four_values_height_one_and_tied_bins() -> None:
    table = pd.DataFrame({"width": [10, 20, 30, 40], "height": [10, 20, 30, 1]})
    slices = slice_columns(table)  # only width and height: still sliced
    assert slices["slice_size"] == ["10×10", "20×20", "30×30", "40×1"]
    assert slices["slice_aspect"] == ["square", "square", "square", "landscape"]
    many_ties = pd.DataFrame({"brightness": [0.0] * 8 + [0.1, 0.2, 0.3, 0.4]})
    labels = slice_columns(many_ties)["slice_brightness"]
    assert labels[0].startswith("brightness Q1") and len(set(labels)) >= 2
