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
            for method in (*DEFAULT_METHODS, "random", "centre")
        ),
    ):
        assert column in table.columns
    assert list(table["path"]) == [str(s.path) for s in tiny_dataset.valid_samples]
    assert set(art.maps) == set(DEFAULT_METHODS)
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
    assert list(manifest["methods"]) == list(DEFAULT_METHODS)
    for name, info in manifest["methods"].items():
        assert info["shape"][0] == manifest["n_images"] and info["file"] == f"maps/{name}.npy"
        assert info["layer"] == "body" and info["additive"] == (name == "cam")
        assert info["seconds"] >= 0 and info["library"]
    assert set(manifest["files"]) == {"predictions.parquet", *EXTRA_FILES} | {
        f"maps/{name}.npy" for name in DEFAULT_METHODS
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
    assert set(quality) == {*DEFAULT_METHODS, "random", "centre"}
    for name in DEFAULT_METHODS:
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
