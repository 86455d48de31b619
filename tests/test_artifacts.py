from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cam_core.artifacts import ARTIFACT_FORMAT, read_artifacts
from cam_core.data import Dataset
from cam_core.errors import ArtifactError


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
        "pointing_hit",
    ):
        assert column in table.columns
    assert list(table["path"]) == [str(s.path) for s in tiny_dataset.valid_samples]
    assert art.cams.shape == (len(table), 2, 6, 6) and art.cams.dtype == np.float16
    probs = table[["prob_cat", "prob_dog"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(table["confidence"], probs.max(axis=1))
    label_prob = np.where(table["label"] == "cat", table["prob_cat"], table["prob_dog"])
    assert np.allclose(table["loss"], -np.log(label_prob), atol=1e-6)
    assert (table["correct"] == (table["label"] == table["pred"])).all()
    logits = table[["logit_cat", "logit_dog"]].to_numpy()
    assert np.allclose(art.cams.astype(np.float32).mean(axis=(2, 3)), logits, atol=5e-3)


def test_manifest_describes_the_files(tiny_artifacts_dir: Path, tiny_model_dir: Path) -> None:
    manifest = json.loads((tiny_artifacts_dir / "manifest.json").read_text())
    model_card = json.loads((tiny_model_dir / "model.json").read_text())
    assert manifest["format_version"] == ARTIFACT_FORMAT
    assert manifest["model_sha256"] == model_card["weights_sha256"]
    assert manifest["classes"] == ["cat", "dog"]
    assert manifest["cams_shape"][0] == manifest["n_images"]
    assert set(manifest["files"]) == {"predictions.parquet", "cams.npy"}
    assert 0.0 <= manifest["metrics"]["accuracy"] <= 1.0


@pytest.fixture()
def artifacts_copy(tiny_artifacts_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_artifacts_dir, tmp_path / "copy"))


def test_misaligned_maps_are_refused(artifacts_copy: Path) -> None:
    cams = np.load(artifacts_copy / "cams.npy")
    np.save(artifacts_copy / "cams.npy", cams[:-1])
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
