"""The shortcut search and weak slices of real analyses: the planted demo shortcut is found,
the plain demo raises no false alarm, and the command, the report and old folders say so."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cam_core.analysis.artifacts import SLICES_FILE, read_artifacts, read_manifest
from cam_core.analysis.pipeline import AnalyzeConfig, analyze, folder_data_config
from cam_core.analysis.reliance import reliance_of
from cam_core.cli import main
from cam_core.errors import ArtifactError
from cam_core.evaluation.shortcuts import ShortcutConfig, Verdict
from cam_core.evaluation.slices import PROPERTY_COLUMNS
from cam_core.present.report import build_report


def _overlap(a: tuple[float, ...], b: list[float]) -> float:
    across = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    down = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return across * down / ((b[2] - b[0]) * (b[3] - b[1]))


def test_the_planted_breed_and_corner_are_the_top_shortcut(shortcut_run: Path) -> None:
    art = read_artifacts(shortcut_run / "artifacts")
    planted = art.manifest.data["shortcut"]
    search = reliance_of(art).search
    top = search.findings[0]
    assert top.verdict is Verdict.SHORTCUT and top.class_name == planted["breed"]
    assert _overlap(top.box, planted["box"]) > 0.9  # the region covers the mark
    assert top.off_object is not None and top.off_object > 0.9
    assert top.transplant is not None and top.transplant.significant
    assert search.masks and search.method == "cam"
    assert top.rows and all(0 <= r < len(art.table) for r in top.rows)


def test_the_plain_demo_has_no_shortcut(trained_species_run: Path) -> None:
    reliance = reliance_of(read_artifacts(trained_species_run / "artifacts"))
    assert reliance.search.findings, "the search ran"
    assert not reliance.search.shortcuts
    assert {f.verdict for f in reliance.search.findings} <= {
        Verdict.OBJECT,
        Verdict.NO_EFFECT,
    }


def test_every_image_gets_its_properties_and_slices(quick_run: Path) -> None:
    art = read_artifacts(quick_run / "artifacts")
    table = art.table
    for column in (*PROPERTY_COLUMNS, "width", "height", "format", "slice_brightness"):
        assert column in table, column
    assert table["brightness"].between(0, 1).all()
    assert SLICES_FILE in art.manifest.extras


def test_the_shortcuts_command_prints_the_ranking_and_json(
    shortcut_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifacts = str(shortcut_run / "artifacts")
    assert main(["shortcuts", "--artifacts", artifacts]) == 0
    text = capsys.readouterr().out
    assert "Bengal" in text and "bottom-right" in text and "weak slices" in text
    assert main(["shortcuts", "--artifacts", artifacts, "--json", "--top", "3"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["findings"][0]["verdict"] == "shortcut"
    assert raw["findings"][0]["class_name"] == "Bengal"
    assert len(raw["slices"]) <= 3 and "mean_map" not in raw["findings"][0]


def test_the_report_says_what_the_model_relies_on(shortcut_run: Path) -> None:
    page = build_report(read_artifacts(shortcut_run / "artifacts"), None)
    section = page.split("What the model relies on", 1)[1]
    assert "<b>Bengal</b> leans on the bottom-right" in section
    assert "Weak slices" in section


def test_an_analysis_before_the_search_says_how_to_get_it(
    quick_run: Path, format_2_copy: Callable[[Path], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old = format_2_copy(quick_run / "artifacts")
    with pytest.raises(ArtifactError, match="no shortcut search .* run the analysis again"):
        reliance_of(read_artifacts(old))
    assert main(["shortcuts", "--artifacts", str(old)]) == 2
    assert "no shortcut search" in capsys.readouterr().err
    assert "no shortcut search" in build_report(read_artifacts(old), None)


def test_without_masks_the_search_still_runs_and_without_normalisation_it_says_why(
    quick_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(read_manifest(quick_run / "artifacts").data["root"])
    photos = Path(shutil.copytree(root / "images", tmp_path / "photos"))  # no masks
    model = Path(shutil.copytree(quick_run / "model", tmp_path / "model"))
    cfg = AnalyzeConfig(
        methods=("cam",),
        quality=None,
        num_workers=0,
        batch_size=8,
        shortcuts=ShortcutConfig(min_images=2, sample_n=8, bootstrap=200),
    )
    data = folder_data_config(model, str(photos), valid_pct=0.5)
    analyze(model, tmp_path / "plain", data, cfg)
    search = read_manifest(tmp_path / "plain").shortcuts
    assert search is not None and not search.masks and not search.skipped
    assert search.findings and all(f.off_object is None for f in search.findings)
    assert any(f.removal is not None and f.transplant is not None for f in search.findings)

    card = json.loads((model / "model.json").read_text())
    del card["mean"], card["std"]
    (model / "model.json").write_text(json.dumps(card))
    analyze(model, tmp_path / "unknown", data, cfg)
    skipped = read_manifest(tmp_path / "unknown").shortcuts
    assert skipped is not None and not skipped.findings
    assert "records no normalisation" in skipped.skipped
    assert main(["shortcuts", "--artifacts", str(tmp_path / "unknown")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("no shortcut search: ") and "--mean and --std" in first


def test_images_darkened_until_the_model_fails_are_the_weakest_slice(
    trained_species_run: Path, tmp_path: Path
) -> None:
    from PIL import Image

    from cam_core.data.sources import DataConfig

    root = Path(read_manifest(trained_species_run / "artifacts").data["root"])
    photos = tmp_path / "photos"
    shutil.copytree(root / "images", photos)
    files = sorted(photos.glob("*.png"))[::8][:200]
    for index, path in enumerate(files):
        if index % 4 == 0:  # a quarter of them nearly black
            with Image.open(path) as image:
                image.point(lambda v: v // 12).save(path)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    for path in files:
        path.rename(chosen / path.name)
    analyze(
        trained_species_run / "model",
        tmp_path / "artifacts",
        DataConfig(source=str(chosen), split=False),
        AnalyzeConfig(methods=("cam",), quality=None, num_workers=0, shortcuts=None),
    )
    art = read_artifacts(tmp_path / "artifacts")
    reliance = reliance_of(art)  # no search asked for; the slices are still there
    assert "without the shortcut search" in reliance.search.skipped
    top = reliance.slices.iloc[0]
    assert top["feature"] == "brightness" and top["value"].startswith("brightness Q1")
    assert bool(top["worse"]) and top["error_rate"] > 0.3
