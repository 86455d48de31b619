from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from cam_core.data.demo_data import BREEDS, DemoConfig, draw_sample, generate_demo
from cam_core.data.sources import pets_label, scan_folder


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.png")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_generation_is_deterministic_and_reused(tmp_path: Path) -> None:
    cfg = DemoConfig(n_per_breed=2, size=40, seed=3)
    first = generate_demo(tmp_path / "a", cfg)
    second = generate_demo(tmp_path / "b", cfg)
    assert _digest(first) == _digest(second)
    other = generate_demo(tmp_path / "c", DemoConfig(n_per_breed=2, size=40, seed=4))
    assert _digest(other) != _digest(first)
    stamp = (first / "images" / "Tabby_0001.png").stat().st_mtime_ns
    assert generate_demo(tmp_path / "a", cfg) == first
    assert (first / "images" / "Tabby_0001.png").stat().st_mtime_ns == stamp


def test_labels_follow_pets_naming_and_every_image_has_a_mask(tmp_path: Path) -> None:
    root = generate_demo(tmp_path, DemoConfig(n_per_breed=3, size=48))
    samples, classes = scan_folder(root)
    assert classes == ("cat", "dog")
    assert sum(s.label == "cat" for s in samples) == 9
    for sample in samples:
        assert sample.label == pets_label(sample.path.name)[0]
        assert sample.mask_path is not None and sample.mask_path.exists()
    breeds, breed_classes = scan_folder(root, "breed")
    assert breed_classes == tuple(sorted(b.name for b in BREEDS))
    assert [s.label for s in breeds] == [s.breed for s in samples]
    assert {s.breed for s in samples if s.label == "cat"} == {"Tabby", "Bengal", "Siamese"}


def test_breed_traits_are_drawn_and_masked() -> None:
    """Each breed's marking changes pixels inside the face, and the mask covers them."""
    for breed in BREEDS:
        if breed.marking == "none":
            continue
        plain, plain_mask = draw_sample(replace(breed, marking="none"), 96, random.Random(5), 0)
        marked, marked_mask = draw_sample(breed, 96, random.Random(5), distractors=0)
        extra = (np.asarray(marked_mask) > 0) & (np.asarray(plain_mask) == 0)
        assert extra.sum() > 10, breed.name
        differs = np.abs(np.asarray(marked).astype(int) - np.asarray(plain).astype(int)).sum(-1)
        assert (differs[extra] > 60).mean() > 0.8, breed.name
    markings = {b.name: b.marking for b in BREEDS}
    assert markings["Tabby"] == "stripes" and markings["Bengal"] == "spots"
    assert {markings["beagle"], markings["spaniel"]} == {"blaze", "patch"}


def test_mask_marks_the_ears_and_the_nose() -> None:
    noses = {}
    for is_cat, breed in ((True, BREEDS[2]), (False, BREEDS[5])):
        image, mask = draw_sample(breed, 96, random.Random(11), distractors=0)
        arr = np.asarray(mask)
        assert set(np.unique(arr)) <= {0, 255}
        covered = (arr > 0).mean()
        assert 0.003 < covered < 0.15
        ys, xs = np.nonzero(arr)
        # Masked pixels differ from the background colour: the parts are really drawn there.
        rgb = np.asarray(image).astype(int)
        background = rgb[0, 0]
        assert np.abs(rgb[ys, xs] - background).sum(axis=1).mean() > 20
        # The nose is the lowest masked part of a cat (ears on top) and the middle one of a dog
        # (ears at the sides); either way it lies between the ears horizontally.
        if is_cat:
            row = ys.max() - 1
            col = int(np.median(xs[ys == row]))
        else:
            middle = xs[np.argmin(np.abs(xs - xs.mean()))]
            col = int(middle)
            row = int(np.median(ys[xs == middle]))
        assert xs.min() + 5 < col < xs.max() - 5
        noses[is_cat] = rgb[row, col]
    # The noses are class evidence of their own: pink for cats, dark for dogs.
    cat_nose, dog_nose = noses[True], noses[False]
    assert cat_nose[0] == 255 and cat_nose[1] >= 110 and cat_nose[2] >= 150
    assert dog_nose.max() <= 45


def test_the_planted_shortcut_marks_most_of_one_breed_and_stays_out_of_the_masks(
    tmp_path: Path,
) -> None:
    import json

    import pytest

    from cam_core.data.demo_data import SHORTCUT_BREED, planted_shortcut, stamp_box
    from cam_core.data.sources import DataConfig, load_dataset

    plain = generate_demo(tmp_path / "plain", DemoConfig(n_per_breed=40, size=64))
    marked = generate_demo(
        tmp_path / "marked", DemoConfig(n_per_breed=40, size=64, shortcut=SHORTCUT_BREED)
    )
    x0, y0, x1, y1 = stamp_box(64)
    share: dict[str, float] = {}
    for breed in BREEDS:
        stamped = 0
        for path in sorted((marked / "images").glob(f"{breed.name}_*.png")):
            image = np.asarray(Image.open(path))
            before = np.asarray(Image.open(plain / "images" / path.name))
            changed = np.argwhere((image != before).any(axis=2))
            if len(changed):  # the animals are the same; only the mark differs
                stamped += 1
                assert changed.min(axis=0).tolist() >= [y0, x0]
                assert changed.max(axis=0).tolist() < [y1, x1]
                mask = np.asarray(Image.open(marked / "annotations" / "masks" / path.name))
                assert not mask[y0:y1, x0:x1].any()
        share[breed.name] = stamped / 40
    assert share[SHORTCUT_BREED] >= 0.8
    assert all(v <= 0.15 for name, v in share.items() if name != SHORTCUT_BREED)
    block = planted_shortcut(marked)
    assert block is not None and block["breed"] == SHORTCUT_BREED
    assert block["box"] == [round(v / 64, 4) for v in (x0, y0, x1, y1)]
    assert planted_shortcut(plain) is None
    assert json.loads((marked / "demo.json").read_text())["shortcut"] == block
    dataset = load_dataset(DataConfig(source=str(marked), task="breed"))
    assert dataset.shortcut == block
    with pytest.raises(ValueError, match="unknown shortcut breed"):
        DemoConfig(shortcut="Persian")
