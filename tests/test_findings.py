"""The analysis as a whole on a demo model that has really learned: familiarity of real
photos and of new demo images, near-copies, and predictions placed against the analysis."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cam_core.analysis.artifacts import read_artifacts
from cam_core.analysis.findings import FamiliarGround, familiar_ground_for
from cam_core.analysis.predict import placed, predict_images
from cam_core.cli import main
from cam_core.data.demo_data import BREEDS, draw_sample
from cam_core.data.photos import installed_photos
from cam_core.errors import ArtifactError
from cam_core.modelling.model_files import load_model


@pytest.fixture(scope="module")
def ground(trained_species_run: Path) -> FamiliarGround:
    return FamiliarGround(read_artifacts(trained_species_run / "artifacts"))


def test_real_photographs_are_all_unfamiliar_to_the_demo_model(
    trained_species_run: Path, ground: FamiliarGround
) -> None:
    model = load_model(trained_species_run / "model", "cpu")
    predictions = placed(predict_images(model, installed_photos(), "cam", precision="fp32"), ground)
    assert len(predictions) == 3
    for prediction in predictions:
        assert prediction.placement is not None and prediction.placement.unfamiliar
        assert prediction.placement.less_familiar_than > 95
        assert prediction.to_json()["unfamiliar"] is True


def test_new_demo_images_are_rarely_flagged(
    trained_species_run: Path, ground: FamiliarGround
) -> None:
    model = load_model(trained_species_run / "model", "cpu")
    rng = random.Random(2024)  # images the model never saw, drawn like its data
    fresh = [(f"new_{i}", draw_sample(BREEDS[i % 6], 96, rng)[0]) for i in range(300)]
    found = placed(predict_images(model, fresh, "cam", batch_size=64, precision="fp32"), ground)
    share = float(np.mean([p.placement is not None and p.placement.unfamiliar for p in found]))
    # The threshold lets through at most 5% in expectation (conformal quantile of 240
    # validation images); the benchmark measures the spread over seeds (QUALITY.md).
    assert share <= 0.08, share


def test_the_unmodified_demo_has_no_near_copies_and_placement_matches_the_table(
    trained_species_run: Path, ground: FamiliarGround
) -> None:
    art = read_artifacts(trained_species_run / "artifacts")
    assert art.manifest.duplicates["validation_pairs"] == 0
    assert art.manifest.duplicates["leaked_images"] == 0
    assert art.manifest.duplicates["checked_against_training"] is True
    assert art.manifest.familiarity is not None
    assert art.manifest.familiarity.reference == "training images"
    flagged = art.table["unfamiliar"].mean()
    assert 0.0 < flagged <= 0.05
    features = np.asarray(art.array("features.npy"), np.float32)
    again = ground.place(features)
    np.testing.assert_allclose(
        again.less_familiar_than, art.table["less_familiar_than"], atol=100 / len(art.table) + 1e-9
    )
    assert again.coords is not None and again.coords.shape == (len(art.table), 2)
    # Placed at its own coordinates or very near (its nearest fitted neighbour is itself).
    coords = np.asarray(art.array("embedding.npy"))
    spread = coords.std(axis=0).mean()
    assert np.median(np.linalg.norm(again.coords - coords, axis=1)) < 0.05 * spread


def test_predict_prints_familiarity_from_the_analysis_beside_the_model(
    trained_species_run: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CAM_LENS_HOME", str(tmp_path / "empty_home"))
    photo = tmp_path / "person.jpg"
    installed_photos()[0][1].save(photo)
    assert main(["predict", "--model", str(trained_species_run / "model"), str(photo)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["unfamiliar"] is True and line["familiarity_percentile"] > 95
    # A copy of the model with no analysis anywhere: said once, fields left out.
    alone = tmp_path / "alone" / "model"
    shutil.copytree(trained_species_run / "model", alone)
    assert main(["predict", "--model", str(alone), str(photo), str(photo)]) == 0
    out = capsys.readouterr()
    lines = [json.loads(x) for x in out.out.strip().splitlines()]
    assert len(lines) == 2 and all("unfamiliar" not in x for x in lines)
    assert out.err.count("no analysis of this model with familiarity") == 1
    # Naming an analysis of other weights is one error line.
    other = tmp_path / "other"
    shutil.copytree(trained_species_run / "artifacts", other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "model_sha256": "0" * 64}))
    code = main(["predict", "--model", str(alone), "--artifacts", str(other), str(photo)])
    assert code == 2 and "other weights" in capsys.readouterr().err


def test_an_analysis_without_features_says_how_to_get_them(
    trained_species_run: Path, format_2_copy: Callable[[Path], Path]
) -> None:
    art = read_artifacts(format_2_copy(trained_species_run / "artifacts"))
    assert art.array("features.npy") is None
    with pytest.raises(ArtifactError, match="re-run `python -m cam_core analyze`"):
        FamiliarGround(art)
    ground, why = familiar_ground_for(
        trained_species_run / "model", "f" * 64, None
    )  # no analysis of these weights
    assert ground is None and "no analysis of this model" in why


def test_copies_of_training_images_planted_among_the_validation_images_are_leaks(
    trained_species_run: Path, tmp_path: Path
) -> None:
    import io

    from cam_core.analysis.cams import explain_files
    from cam_core.analysis.findings import find
    from cam_core.evaluation.familiarity import REFERENCE_ANALYSED, REFERENCE_TRAINING

    art = read_artifacts(trained_species_run / "artifacts")
    model = load_model(trained_species_run / "model", "cpu")
    reference = art.extra_table("reference.parquet")
    assert reference is not None
    training = [Path(p) for p in reference["path"].iloc[:60]]
    validation = [Path(p) for p in art.table["path"].iloc[:60]]
    planted = []
    for i, source in enumerate(training[:4]):
        image = Image.open(source).convert("RGB")
        copy = [
            image,
            image.resize((160, 160)),
            image.crop((4, 4, 92, 92)),
            image,
        ][i]
        target = tmp_path / f"copy_{i}.{'jpg' if i == 3 else 'png'}"
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG" if i == 3 else "PNG", quality=70)
        target.write_bytes(buffer.getvalue())
        planted.append(target)
    analysed = explain_files(model, [*validation, *planted], (), num_workers=0, precision="fp32")
    trained = explain_files(model, training, (), num_workers=0, precision="fp32")
    found = find(analysed, trained, REFERENCE_TRAINING)
    assert list(np.flatnonzero(found.columns["leaked"])) == [60, 61, 62, 63]
    leaks = found.pairs[found.pairs["kind"] == "training"]
    assert sorted(zip(leaks["row"], leaks["other"], strict=True)) == [(60 + i, i) for i in range(4)]
    assert found.duplicates["leaked_images"] == 4 and found.familiarity.n_reference == 60
    # Without training images the analysed ones are their own reference: nothing is a leak.
    alone = find(analysed, None, REFERENCE_ANALYSED)
    assert not alone.columns["leaked"].any() and alone.familiarity.reference == REFERENCE_ANALYSED
    assert alone.duplicates["checked_against_training"] is False


def test_analysed_images_as_their_own_reference_are_scored_leave_one_out() -> None:
    from cam_core.analysis.findings import familiarity_columns
    from cam_core.evaluation.familiarity import REFERENCE_ANALYSED, FamiliarityIndex

    rng = np.random.default_rng(5)
    features = np.abs(rng.standard_normal((60, 16))) + np.repeat(np.eye(16)[:3] * 4, 20, axis=0)
    features[-1] = np.abs(rng.standard_normal(16)) * 9  # one odd one out
    logits = rng.standard_normal((60, 2))
    columns, record = familiarity_columns(features, logits, None, REFERENCE_ANALYSED)
    _, leave_one_out = FamiliarityIndex.fit(features)
    np.testing.assert_allclose(columns["familiarity"], leave_one_out)
    assert record.reference == REFERENCE_ANALYSED and record.n_reference == 60
    assert columns["unfamiliar"][-1] and columns["less_familiar_than"][-1] > 95
    assert columns["unfamiliar"].sum() <= 3  # about 5% of 60 by construction
