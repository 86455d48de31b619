from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cam_core.analysis.artifacts import ARTIFACT_FORMAT, EXTRA_FILES, read_artifacts
from cam_core.data.sources import Dataset
from cam_core.errors import ArtifactError
from cam_core.methods import DEFAULT_METHODS

CNN_METHODS = tuple(name for name in DEFAULT_METHODS if name != "rollout")
"""The default methods that apply to the tiny CNN (attention rollout needs a transformer)."""


def test_columns_alignment_and_probabilities(
    tiny_artifacts_dir: Path, tiny_dataset: Dataset
) -> None:
    art = read_artifacts(tiny_artifacts_dir)
    table = art.table
    for column in (
        "path",
        "label",
        "pred",
        "correct",
        "confidence",
        "loss",
        "logit_cat",
        "logit_dog",
        "prob_cat",
        "prob_dog",
        "breed",
        "mask_path",
        *(
            f"{metric}.{method}"
            for metric in ("pointing_hit", "energy_in_mask", "deletion_auc", "insertion_auc")
            for method in (*CNN_METHODS, "random", "centre")
        ),
    ):
        assert column in table.columns
    assert list(table["path"]) == [str(s.path) for s in tiny_dataset.valid_samples]
    assert set(art.maps) == set(CNN_METHODS)
    for maps in art.maps.values():
        assert maps.shape == (len(table), 2, 6, 6) and maps.dtype == np.float16
    probs = table[["prob_cat", "prob_dog"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(table["confidence"], probs.max(axis=1))
    label_prob = np.where(table["label"] == "cat", table["prob_cat"], table["prob_dog"])
    assert np.allclose(table["loss"], -np.log(label_prob), atol=1e-6)
    assert (table["correct"] == (table["label"] == table["pred"])).all()
    logits = table[["logit_cat", "logit_dog"]].to_numpy()
    assert np.allclose(art.maps["cam"].astype(np.float32).mean(axis=(2, 3)), logits, atol=5e-3)


def test_manifest_describes_the_files(tiny_artifacts_dir: Path, tiny_model_dir: Path) -> None:
    manifest = json.loads((tiny_artifacts_dir / "manifest.json").read_text())
    model_card = json.loads((tiny_model_dir / "model.json").read_text())
    assert manifest["format_version"] == ARTIFACT_FORMAT
    assert manifest["model_sha256"] == model_card["weights_sha256"]
    assert manifest["classes"] == ["cat", "dog"]
    assert list(manifest["methods"]) == list(CNN_METHODS)
    for name, info in manifest["methods"].items():
        assert info["shape"][0] == manifest["n_images"] and info["file"] == f"maps/{name}.npy"
        assert info["layer"] == "body" and info["additive"] == (name == "cam")
        assert info["seconds"] >= 0 and info["library"]
    assert set(manifest["files"]) == {"predictions.parquet", *EXTRA_FILES} | {
        f"maps/{name}.npy" for name in CNN_METHODS
    }
    n, dim = manifest["n_images"], manifest["features"]["dim"]
    assert (
        manifest["extras"]["features.npy"] == [n, dim] and manifest["features"]["layer"] == "body"
    )
    assert manifest["extras"]["embedding.npy"] == [n, 2]
    familiarity = manifest["familiarity"]
    assert familiarity["reference"] == "training images" and familiarity["n_reference"] >= 2
    assert manifest["extras"]["reference_features.npy"] == [familiarity["n_reference"], dim]
    assert 0.0 <= manifest["metrics"]["accuracy"] <= 1.0
    quality = manifest["quality"]
    assert set(quality) == {*CNN_METHODS, "random", "centre"}
    for name in CNN_METHODS:
        assert set(quality[name]) >= {
            "pointing_game",
            "energy_in_mask",
            "deletion_auc",
            "insertion_auc",
            "randomization_spearman",
        }
    assert manifest["evaluation"]["sample_size"] == manifest["n_images"]


@pytest.fixture()
def artifacts_copy(tiny_artifacts_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_artifacts_dir, tmp_path / "copy"))


def test_misaligned_maps_are_refused(artifacts_copy: Path) -> None:
    cams = np.load(artifacts_copy / "maps" / "gradcam.npy")
    np.save(artifacts_copy / "maps" / "gradcam.npy", cams[:-1])
    with pytest.raises(ArtifactError, match="does not match its manifest hash"):
        read_artifacts(artifacts_copy)
    with pytest.raises(ArtifactError, match="rows"):
        read_artifacts(artifacts_copy, verify=False)


def test_newer_or_missing_manifest_is_refused(artifacts_copy: Path) -> None:
    path = artifacts_copy / "manifest.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "format_version": ARTIFACT_FORMAT + 1}))
    with pytest.raises(ArtifactError, match="upgrade cam_core"):
        read_artifacts(artifacts_copy)
    path.unlink()
    with pytest.raises(ArtifactError, match="never finished"):
        read_artifacts(artifacts_copy)


def test_a_format_1_folder_opens_as_method_cam(artifacts_copy: Path) -> None:
    """Round 1 wrote one cams.npy and a pointing_hit column; it still opens."""
    new = read_artifacts(artifacts_copy)
    np.save(artifacts_copy / "cams.npy", np.asarray(new.maps["cam"]))
    shutil.rmtree(artifacts_copy / "maps")
    table = new.table.rename(columns={"pointing_hit.cam": "pointing_hit"})
    table[[c for c in table.columns if "." not in c]].to_parquet(
        artifacts_copy / "predictions.parquet", index=False
    )
    raw = json.loads((artifacts_copy / "manifest.json").read_text())
    old = {k: v for k, v in raw.items() if k not in ("methods", "quality", "evaluation")}
    old.update(format_version=1, cams_shape=raw["methods"]["cam"]["shape"], files={})
    (artifacts_copy / "manifest.json").write_text(json.dumps(old))
    art = read_artifacts(artifacts_copy)
    assert list(art.maps) == ["cam"] and art.manifest.methods["cam"].additive
    assert np.array_equal(art.maps["cam"], new.maps["cam"])
    assert art.table["pointing_hit.cam"].equals(new.table["pointing_hit.cam"])
    with pytest.raises(ArtifactError, match="no maps of 'gradcam'"):
        art.maps_of("gradcam")


def test_one_image_maps_read_from_the_file_equal_the_memory_map(tiny_artifacts_dir: Path) -> None:
    art = read_artifacts(tiny_artifacts_dir)
    for method in art.manifest.method_names:
        for row in (0, len(art.table) - 1):
            read = art.image_maps(method, row)
            assert read.dtype == np.float32
            np.testing.assert_array_equal(read, np.asarray(art.maps_of(method)[row], np.float32))
    with pytest.raises(IndexError, match="outside the analysis"):
        art.image_maps("cam", len(art.table))


def test_maps_that_disagree_with_the_manifest_are_refused_and_nothing_changes(
    tiny_artifacts_dir: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    from cam_core.analysis.artifacts import write_artifacts

    folder = Path(shutil.copytree(tiny_artifacts_dir, tmp_path / "art"))
    before = read_artifacts(folder)
    maps = {name: np.asarray(m) for name, m in before.maps.items()}
    one_short = dict(list(maps.items())[:-1])
    with pytest.raises(ArtifactError, match="the manifest describes"):
        write_artifacts(folder, before.table, one_short, before.manifest)
    wrong_shape = {**maps, "cam": maps["cam"][:, :, :-1]}
    with pytest.raises(ArtifactError, match="refusing to write"):
        write_artifacts(folder, before.table, wrong_shape, before.manifest)
    elsewhere = replace(
        before.manifest,
        methods={
            **before.manifest.methods,
            "cam": replace(before.manifest.methods["cam"], file="x"),
        },
    )
    with pytest.raises(ArtifactError, match="must go to maps/cam.npy"):
        write_artifacts(folder, before.table, maps, elsewhere)
    after = read_artifacts(folder)
    assert after.manifest == before.manifest and after.table.equals(before.table)


CLASSES = ("cat", "dog", "fox")


def _write_synthetic(
    folder: Path,
    n: int = 5,
    methods: tuple[str, ...] = ("cam", "gradcam"),
    extras: bool = True,
    created: str = "",
) -> dict:
    """Artifacts written straight through write_artifacts: exact CAM of every class and
    Grad-CAM of a two-class budget whose slot order differs per row."""
    import pandas as pd

    from cam_core.analysis.artifacts import (
        DUPLICATES_FILE,
        FEATURES_FILE,
        Manifest,
        classes_file,
        maps_file,
        write_artifacts,
    )
    from cam_core.methods.record import MethodRecord

    rng = np.random.default_rng(n)
    table = pd.DataFrame(
        {
            "path": [f"img_{i}.png" for i in range(n)],
            "label": ["cat"] * n,
            "pred": ["dog"] * n,
            "correct": [False] * n,
            "confidence": rng.random(n),
            "loss": rng.random(n),
            **{f"{kind}_{c}": rng.random(n) for kind in ("logit", "prob") for c in CLASSES},
        }
    )
    maps = {
        "cam": rng.random((n, 3, 2, 2)).astype(np.float32),
        "gradcam": rng.random((n, 2, 2, 2)).astype(np.float32),
    }
    slots = {"gradcam": np.array([[i % 3, (i + 1) % 3] for i in range(n)])}
    records = {
        name: MethodRecord(
            name.upper(),
            "body",
            name == "cam",
            name != "cam",
            "test",
            shape=maps[name].shape,
            file=maps_file(name),
            classes_file=classes_file(name) if name in slots else "",
        )
        for name in methods
    }
    manifest = Manifest(CLASSES, n, "sha-x", str(folder), 48, methods=records)
    whole = (
        {
            FEATURES_FILE: rng.random((n, 4)).astype(np.float16),
            DUPLICATES_FILE: pd.DataFrame({"row": [0], "other": [1]}),
        }
        if extras
        else None
    )
    written = write_artifacts(
        folder,
        table,
        {m: maps[m] for m in methods},
        manifest,
        whole,
        {m: s for m, s in slots.items() if m in methods},
    )
    if created:  # as if written then (write_artifacts stamps the time of writing)
        raw = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**raw, "created_at": created}))
    return {"table": table, "maps": maps, "slots": slots, "extras": whole, "manifest": written}


def test_written_artifacts_read_back_exactly(tmp_path: Path) -> None:
    from cam_core.analysis.artifacts import DUPLICATES_FILE, FEATURES_FILE

    made = _write_synthetic(tmp_path)
    art = read_artifacts(tmp_path)
    assert art.table.equals(made["table"])
    np.testing.assert_array_equal(art.maps["cam"], made["maps"]["cam"].astype(np.float16))
    assert art.maps["cam"].dtype == np.float16 and isinstance(art.maps["cam"], np.memmap)
    np.testing.assert_array_equal(art.map_classes["gradcam"], made["slots"]["gradcam"])
    assert art.map_classes["gradcam"].dtype == np.int32 and "cam" not in art.map_classes
    np.testing.assert_array_equal(art.array(FEATURES_FILE), made["extras"][FEATURES_FILE])
    assert art.array("embedding.npy") is None
    assert art.extra_table(DUPLICATES_FILE).equals(made["extras"][DUPLICATES_FILE])
    assert art.extra_table("reference.parquet") is None
    manifest = art.manifest
    assert manifest == made["manifest"]
    assert manifest.extras == {FEATURES_FILE: [5, 4], DUPLICATES_FILE: [1, 2]}
    assert set(manifest.files) == {
        "predictions.parquet",
        "maps/cam.npy",
        "maps/gradcam.npy",
        "maps/gradcam.classes.npy",
        FEATURES_FILE,
        DUPLICATES_FILE,
    }
    assert manifest.created_at and manifest.versions["cam_core"]
    # row 4 holds classes 1 and 2 in its budget: class 0 is NaN
    row = art.image_maps("gradcam", 4)
    assert row.shape == (3, 2, 2) and np.isnan(row[0]).all()
    np.testing.assert_array_equal(row[1], made["maps"]["gradcam"][4, 0].astype(np.float16))
    np.testing.assert_array_equal(row[2], made["maps"]["gradcam"][4, 1].astype(np.float16))
    assert not art.has_map("gradcam", 4, 0) and art.has_map("gradcam", 4, 2)
    # maps held in memory (not a file's memory map) read the same
    from dataclasses import replace

    held = replace(art, maps={name: np.array(maps) for name, maps in art.maps.items()})
    np.testing.assert_array_equal(held.image_maps("gradcam", 4), row)
    np.testing.assert_array_equal(held.image_maps("cam", 2), art.image_maps("cam", 2))
    assert art.has_map("cam", 4, 0)
    with pytest.raises(ArtifactError, match="no maps of 'scorecam' \\(it has cam, gradcam\\)"):
        art.maps_of("scorecam")


def test_a_new_analysis_removes_the_files_the_old_one_left(tmp_path: Path) -> None:
    _write_synthetic(tmp_path)
    (tmp_path / "cams.npy").write_bytes(b"format 1 leftovers")
    _write_synthetic(tmp_path, methods=("cam",), extras=False)
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["cam.npy"]
    assert not (tmp_path / "features.npy").exists() and not (tmp_path / "cams.npy").exists()
    assert read_artifacts(tmp_path).manifest.method_names == ("cam",)


def test_inconsistent_writes_are_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    from cam_core.analysis.artifacts import write_artifacts

    made = _write_synthetic(tmp_path)
    table, maps, manifest = made["table"], made["maps"], made["manifest"]
    with pytest.raises(ArtifactError, match="no maps to write"):
        write_artifacts(tmp_path, table, {}, manifest)
    with pytest.raises(ArtifactError, match="no slot classes were given"):
        write_artifacts(tmp_path, table, maps, manifest)
    with pytest.raises(ArtifactError, match="unknown artifact files"):
        write_artifacts(tmp_path, table, maps, manifest, {"notes.npy": np.zeros(2)}, made["slots"])
    bad = {"gradcam": np.array([[0, 3]] * 5)}  # class 3 of 3 classes
    with pytest.raises(ArtifactError, match="do not fit maps"):
        write_artifacts(tmp_path, table, maps, manifest, None, bad)
    moved = replace(
        manifest,
        methods={
            **manifest.methods,
            "gradcam": replace(manifest.methods["gradcam"], classes_file="maps/elsewhere.npy"),
        },
    )
    with pytest.raises(ArtifactError, match="must go to maps/gradcam.classes.npy"):
        write_artifacts(tmp_path, table, maps, moved, None, made["slots"])
    with pytest.raises(ArtifactError, match="the manifest describes"):
        write_artifacts(tmp_path, table.iloc[:4], maps, manifest, None, made["slots"])
    assert read_artifacts(tmp_path).manifest == manifest  # nothing changed


def test_damaged_folders_are_refused_on_reading(tmp_path: Path) -> None:
    import pandas as pd

    _write_synthetic(tmp_path)
    (tmp_path / "maps" / "cam.npy").write_bytes((tmp_path / "maps" / "cam.npy").read_bytes())
    raw = (tmp_path / "maps" / "gradcam.npy").read_bytes()
    (tmp_path / "maps" / "gradcam.npy").write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ArtifactError, match="gradcam.npy does not match its manifest hash"):
        read_artifacts(tmp_path)
    assert read_artifacts(tmp_path, verify_maps=False).maps["gradcam"].shape == (5, 2, 2, 2)
    assert read_artifacts(tmp_path, verify=False) is not None
    table = pd.read_parquet(tmp_path / "predictions.parquet").drop(columns=["prob_fox"])
    table.to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(ArtifactError, match="does not match"):
        read_artifacts(tmp_path, verify_maps=False)
    with pytest.raises(ArtifactError, match="lacks columns prob_fox"):
        read_artifacts(tmp_path, verify=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["extras"]["features.npy"] = [5, 3]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    table.assign(prob_fox=0.0).to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(ArtifactError, match=r"features.npy has shape \(5, 4\) but the manifest"):
        read_artifacts(tmp_path, verify=False)
    manifest["methods"] = {}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="lacks fields"):
        read_artifacts(tmp_path, verify=False)
    with pytest.raises(ArtifactError, match="does not exist"):
        read_artifacts(tmp_path / "nowhere")


def test_analyses_are_found_newest_first(tmp_path: Path) -> None:
    import os

    from cam_core.analysis.artifacts import analyses_of_model, find_artifact_folders

    # names in the opposite order of the creation times: the order is by time, not by name
    old, new, other = tmp_path / "b" / "old", tmp_path / "a" / "c" / "new", tmp_path / "other"
    _write_synthetic(old, created="2026-01-01T00:00:00")
    _write_synthetic(new, created="2026-02-01T00:00:00")
    _write_synthetic(other, extras=False)
    deep = tmp_path / "1" / "2" / "3" / "4"
    _write_synthetic(deep)
    os.utime(old / "manifest.json", (1, 1))
    os.utime(other / "manifest.json", (2, 2))
    found = find_artifact_folders(tmp_path)
    assert set(found) == {old, new, other} and found[-2:] == [other, old]
    assert deep in find_artifact_folders(tmp_path, max_depth=4)
    assert find_artifact_folders(tmp_path / "none") == []
    # the same weights with features, newest by creation time; unreadable folders skipped
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{")
    assert analyses_of_model("sha-x", [old, other, tmp_path / "broken", new]) == [new, old]
    assert analyses_of_model("sha-y", [old, new]) == []


def test_the_search_for_analyses_lists_folders_without_following_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from cam_core.analysis import artifacts
    from cam_core.analysis.artifacts import find_artifact_folders

    run = tmp_path / "runs" / "one"
    _write_synthetic(run)
    _write_synthetic(tmp_path)  # the root itself holds an analysis
    images = tmp_path / "images"
    images.mkdir()
    for i in range(50):  # a data folder beside the analyses: files and links to files
        (images / f"cat_{i}.png").write_bytes(b"x")
        (images / f"link_{i}.png").symlink_to(images / f"cat_{i}.png")
    (tmp_path / "linked").symlink_to(run, target_is_directory=True)  # not followed: may loop
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "odd" / "manifest.json").mkdir(parents=True)  # a folder, not a manifest
    os.utime(tmp_path / "manifest.json", (1, 1))
    assert find_artifact_folders(tmp_path) == [run, tmp_path]
    assert find_artifact_folders(tmp_path / "runs" / "one" / "manifest.json") == []
    assert find_artifact_folders(tmp_path, max_depth=1) == [tmp_path]
    assert find_artifact_folders(tmp_path, max_depth=0) == [tmp_path]

    listed = []
    real_scandir = os.scandir

    def scandir(folder: object) -> object:
        listed.append(Path(str(folder)))
        if Path(str(folder)) == tmp_path / "runs":
            raise PermissionError(13, "Permission denied")
        return real_scandir(folder)  # type: ignore[arg-type]

    monkeypatch.setattr(artifacts.os, "scandir", scandir)
    assert find_artifact_folders(tmp_path) == [tmp_path]  # the unreadable folder is skipped
    # every folder listed once; the files of the data folder are never listed as folders
    folders = [
        tmp_path,
        tmp_path / "runs",
        images,
        tmp_path / "odd",
        tmp_path / "odd" / "manifest.json",
    ]
    assert sorted(listed) == sorted([*folders, tmp_path / "maps"])  # the analysis' own maps/


def test_the_background_map_check_finds_a_changed_or_missing_map(tmp_path: Path) -> None:
    from cam_core.analysis.artifacts import read_manifest, verify_maps

    _write_synthetic(tmp_path)
    manifest = read_manifest(tmp_path)
    verify_maps(tmp_path, manifest)  # intact: nothing raised
    raw = (tmp_path / "maps" / "gradcam.npy").read_bytes()
    (tmp_path / "maps" / "gradcam.npy").write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ArtifactError, match="gradcam.npy does not match its manifest hash"):
        verify_maps(tmp_path, manifest)
    (tmp_path / "maps" / "gradcam.npy").unlink()
    with pytest.raises(ArtifactError, match="gradcam.npy is missing"):
        verify_maps(tmp_path, manifest)


def test_a_new_manifest_describes_the_model_and_the_run(tiny_model_dir: Path) -> None:
    from cam_core.analysis.artifacts import new_manifest
    from cam_core.modelling.model_files import read_card

    card = read_card(tiny_model_dir)
    manifest = new_manifest(
        card,
        tiny_model_dir,
        7,
        {},
        {"accuracy": 0.9},
        {"source": "demo"},
        quality={"cam": {"pointing_game": 0.8}},
    )
    assert manifest.classes == tuple(card.classes) and manifest.n_images == 7
    assert manifest.model_sha256 == card.weights_sha256 and manifest.image_size == card.image_size
    assert manifest.model_dir == str(tiny_model_dir.resolve())
    assert manifest.metrics == {"accuracy": 0.9} and manifest.data == {"source": "demo"}
    assert manifest.methods == {} and manifest.quality == {"cam": {"pointing_game": 0.8}}
    assert manifest.evaluation == {} and manifest.unavailable == {}
    from cam_core.methods.record import MethodRecord

    record = MethodRecord("CAM", "body", True, False, "test", shape=(7, 2, 2, 2))
    full = new_manifest(
        card,
        tiny_model_dir,
        7,
        {"cam": record},
        {},
        {},
        evaluation={"seed": 3},
        unavailable={"scorecam": "too slow"},
        features={"layer": "body", "dim": 8},
    )
    assert full.methods == {"cam": record} and full.evaluation == {"seed": 3}
    assert full.unavailable == {"scorecam": "too slow"}
    assert full.features == {"layer": "body", "dim": 8}


def test_the_manifest_s_whole_dataset_blocks_are_their_own_json(tmp_path: Path) -> None:
    from cam_core.analysis.artifacts import Manifest
    from cam_core.evaluation.familiarity import FamiliarityRecord
    from cam_core.evaluation.layers import LayerChoice
    from cam_core.evaluation.shortcuts import ShortcutSearch

    familiarity = FamiliarityRecord("training images")
    search = ShortcutSearch("gradcam", (), {"seed": 1}, True, 2.0, "")
    choice = LayerChoice("gradcam", "body", "the model has one candidate layer", seed=3)
    manifest = Manifest(
        CLASSES,
        5,
        "sha-x",
        str(tmp_path),
        48,
        familiarity=familiarity,
        shortcuts=search,
        layer_choice=choice,
    )
    raw = manifest.to_json()
    assert raw["familiarity"] == familiarity.to_json()
    assert raw["shortcuts"] == search.to_json()
    assert raw["layer_choice"] == choice.to_json()
    json.dumps(raw)  # plain JSON all through (enums and records as their values)
    bare = Manifest(CLASSES, 5, "sha-x", str(tmp_path), 48).to_json()
    assert bare["familiarity"] is None and bare["shortcuts"] is None
    assert bare["layer_choice"] is None


def test_the_manifest_file_holds_each_record_s_own_entry_and_the_utc_time(tmp_path: Path) -> None:
    made = _write_synthetic(tmp_path)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    records = made["manifest"].methods
    assert raw["methods"] == {name: record.to_json() for name, record in records.items()}
    assert "bias" not in raw["methods"]["cam"]  # only where there is one
    assert raw["created_at"].endswith("+00:00")


def test_rows_of_the_table_and_of_the_maps_must_agree_even_where_maps_fit_their_record(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from cam_core.analysis.artifacts import classes_file, write_artifacts

    made = _write_synthetic(tmp_path)
    table, maps, manifest, slots = made["table"], made["maps"], made["manifest"], made["slots"]
    with pytest.raises(ArtifactError, match="4 table rows but cam maps of shape"):
        write_artifacts(tmp_path, table.iloc[:4], maps, replace(manifest, n_images=4), None, slots)
    # a record naming a slot-class file needs the slot classes, even for maps of every class
    named = replace(
        manifest,
        methods={
            **manifest.methods,
            "cam": replace(manifest.methods["cam"], classes_file=classes_file("cam")),
        },
    )
    with pytest.raises(ArtifactError, match="cam maps of shape .* no slot classes were given"):
        write_artifacts(tmp_path, table, maps, named, None, slots)
    assert read_artifacts(tmp_path).manifest == manifest


def test_a_table_with_a_filtered_index_reads_back_numbered_from_zero(tmp_path: Path) -> None:
    import pandas as pd

    from cam_core.analysis.artifacts import DUPLICATES_FILE, write_artifacts

    made = _write_synthetic(tmp_path)
    shifted = made["table"].set_axis(range(10, 15))
    pairs = pd.DataFrame({"row": [0, 2], "other": [1, 3]}, index=[7, 3])
    write_artifacts(
        tmp_path, shifted, made["maps"], made["manifest"], {DUPLICATES_FILE: pairs}, made["slots"]
    )
    art = read_artifacts(tmp_path)
    assert art.table.index.equals(pd.RangeIndex(5)) and list(art.table.columns) == list(shifted)
    assert art.extra_table(DUPLICATES_FILE).equals(pairs.reset_index(drop=True))


def test_a_format_1_record_is_the_forward_method_s_and_needs_its_shape(
    artifacts_copy: Path,
) -> None:
    from cam_core.analysis.artifacts import read_manifest
    from cam_core.methods import forward_method

    raw = json.loads((artifacts_copy / "manifest.json").read_text())
    old = {k: v for k, v in raw.items() if k not in ("methods", "quality", "evaluation")}
    old.update(format_version=1, cams_shape=raw["methods"]["cam"]["shape"])
    (artifacts_copy / "manifest.json").write_text(json.dumps(old))
    record = read_manifest(artifacts_copy).methods["cam"]
    method = forward_method()
    assert record.title == method.title and record.layer == method.layer_for("body")
    assert record.normalised == method.normalised and record.library == method.library
    assert record.file == "cams.npy" and list(record.shape) == raw["methods"]["cam"]["shape"]
    del old["cams_shape"]
    (artifacts_copy / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(ArtifactError):
        read_artifacts(artifacts_copy, verify=False)


def test_a_missing_or_damaged_manifest_says_what_happened_and_what_to_do(tmp_path: Path) -> None:
    _write_synthetic(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ArtifactError, match="is not valid JSON .*; rerun the analysis$"):
        read_artifacts(tmp_path)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="is missing; the analysis never finished here$"):
        read_artifacts(tmp_path)


def test_a_method_entry_without_a_title_is_titled_by_its_name(tmp_path: Path) -> None:
    from cam_core.analysis.artifacts import read_manifest

    _write_synthetic(tmp_path)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    del raw["methods"]["gradcam"]["title"]
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    assert read_manifest(tmp_path).methods["gradcam"].title == "gradcam"


def test_the_whole_dataset_blocks_read_back_as_records(tmp_path: Path) -> None:
    from dataclasses import replace

    from cam_core.analysis.artifacts import read_manifest, write_artifacts
    from cam_core.evaluation.familiarity import FamiliarityRecord
    from cam_core.evaluation.layers import LayerChoice
    from cam_core.evaluation.shortcuts import ShortcutSearch

    made = _write_synthetic(tmp_path)
    blocks = replace(
        made["manifest"],
        familiarity=FamiliarityRecord("training images"),
        shortcuts=ShortcutSearch("gradcam", (), {"seed": 1}, True, 2.0, ""),
        layer_choice=LayerChoice("gradcam", "body", "the model has one candidate layer", seed=3),
    )
    write_artifacts(tmp_path, made["table"], made["maps"], blocks, made["extras"], made["slots"])
    manifest = read_manifest(tmp_path)
    assert manifest.familiarity == blocks.familiarity
    assert manifest.shortcuts == blocks.shortcuts
    assert manifest.layer_choice == blocks.layer_choice


def test_whole_dataset_arrays_are_memory_mapped_and_checked_in_the_background(
    tmp_path: Path,
) -> None:
    from cam_core.analysis.artifacts import FEATURES_FILE, read_manifest, verify_maps

    _write_synthetic(tmp_path)
    assert isinstance(read_artifacts(tmp_path).array(FEATURES_FILE), np.memmap)
    manifest = read_manifest(tmp_path)
    np.save(tmp_path / FEATURES_FILE, np.zeros((5, 4), np.float16))
    with pytest.raises(ArtifactError, match="features.npy does not match its manifest hash"):
        verify_maps(tmp_path, manifest)


def test_pickled_slot_classes_are_not_loaded(tmp_path: Path) -> None:
    _write_synthetic(tmp_path)
    slots = np.empty((5, 2), dtype=object)
    slots[:] = 1
    np.save(tmp_path / "maps" / "gradcam.classes.npy", slots, allow_pickle=True)
    with pytest.raises(ArtifactError, match="cannot read artifacts"):
        read_artifacts(tmp_path, verify=False)


def test_maps_or_columns_unlike_the_manifest_are_refused(tmp_path: Path) -> None:
    import pandas as pd

    from cam_core.analysis.artifacts import FEATURES_FILE, write_artifacts

    made = _write_synthetic(tmp_path)
    path = tmp_path / "manifest.json"
    raw = json.loads(path.read_text())
    # the right number of rows, but not the recorded shape
    path.write_text(
        json.dumps(
            {
                **raw,
                "methods": {
                    **raw["methods"],
                    "cam": {**raw["methods"]["cam"], "shape": [5, 3, 3, 3]},
                },
            }
        )
    )
    with pytest.raises(ArtifactError, match="the cam maps have shape"):
        read_artifacts(tmp_path, verify=False)
    # the recorded shape, but two of three classes and no slot classes
    gradcam = {k: v for k, v in raw["methods"]["gradcam"].items() if k != "classes_file"}
    path.write_text(json.dumps({**raw, "methods": {**raw["methods"], "gradcam": gradcam}}))
    with pytest.raises(ArtifactError, match=r"gradcam maps' shape .* is not \(N, classes, h, w\)"):
        read_artifacts(tmp_path, verify=False)
    path.write_text(json.dumps(raw))
    table = pd.read_parquet(tmp_path / "predictions.parquet").drop(columns=["loss"])
    table.to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(ArtifactError, match="lacks columns loss$"):
        read_artifacts(tmp_path, verify=False)
    extras = {**made["extras"], FEATURES_FILE: np.zeros((6, 4), np.float16)}
    write_artifacts(tmp_path, made["table"], made["maps"], made["manifest"], extras, made["slots"])
    with pytest.raises(ArtifactError, match="6 feature rows for 5 images"):
        read_artifacts(tmp_path)
