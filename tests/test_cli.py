from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from cam_core.cli import build_parser, main
from cam_core.data.sources import Dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", ["demo", "train", "analyze", "predict", "report", "layers"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_predict_prints_json_and_keeps_going_after_a_bad_input(
    tiny_model_dir: Path,
    tiny_dataset: Dataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = str(tiny_dataset.samples[0].path)
    junk = tmp_path / "junk.jpg"
    junk.write_text("hello")
    out_dir = tmp_path / "overlays"
    status = main(
        [
            "-q",
            "predict",
            "--model",
            str(tiny_model_dir),
            "--out-dir",
            str(out_dir),
            good,
            str(junk),
            str(tmp_path / "missing.png"),
            good,
        ]
    )
    captured = capsys.readouterr()
    assert status == 2
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["source"] for line in lines] == [good, good]
    assert set(lines[0]["probs"]) == {"cat", "dog"}
    assert abs(sum(lines[0]["probs"].values()) - 1) < 1e-4
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "junk.jpg" in errors[0] and "text file" in errors[0]
    assert "missing.png" in errors[1]
    assert "Traceback" not in captured.err
    assert len(list(out_dir.glob("*.png"))) == 4


def test_predict_all_good_exits_zero(
    tiny_model_dir: Path, tiny_dataset: Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["-q", "predict", "--model", str(tiny_model_dir), str(tiny_dataset.samples[1].path)])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["pred"] in ("cat", "dog")


def test_bad_model_folder_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "--model", str(tmp_path / "none"), "x.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: model folder") and "Traceback" not in "\n".join(err)


def test_train_offline_pets_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fastai.data.external as external

    def offline(*_args: object, **_kwargs: object) -> Path:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(external, "untar_data", offline)
    assert main(["train", "--data", "pets", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "error: downloading Oxford-IIIT Pet" in err and "--data" in err
    assert not (tmp_path / "m").exists()


def test_train_refuses_bad_architecture_and_head_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--data", "demo", "--arch", "vgg", "--out", str(tmp_path / "m")])
    assert "invalid choice: 'vgg'" in capsys.readouterr().err
    args = ["train", "--data", "demo", "--head-lr-mult", "0", "--out", str(tmp_path / "m")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: head_lr_mult must be positive, got 0.0"]
    assert not (tmp_path / "m").exists()


def test_offline_pretrained_weights_suggest_no_pretrained(
    tiny_dataset: Dataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    status = main(
        [
            "train",
            "--data",
            str(tiny_dataset.root),
            "--arch",
            "resnet18",
            "--size",
            "32",
            "--bs",
            "4",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert status == 2
    assert "--no-pretrained" in capsys.readouterr().err


def test_demo_quick_end_to_end_through_the_real_cli(tmp_path: Path) -> None:
    """The real CLI with redirected output: log lines (one per epoch, per 10%), no bar redraws."""
    env = {"CAM_LENS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "cam_core", "demo", "--quick", "--out", str(tmp_path / "run")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n_images"] == 10
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
    from cam_core.analysis.artifacts import read_artifacts

    art = read_artifacts(tmp_path / "run" / "artifacts")
    assert len(art.table) == 10 and all(m.shape[:2] == (10, 2) for m in art.maps.values())
    lines = result.stderr.splitlines()
    assert 10 < len(lines) < 100
    assert not any("\r" in line or "█" in line or "Warning" in line for line in lines)
    assert sum("stage 1: epoch 1/1: train_loss" in line for line in lines) == 1
    assert sum("stage 2 (CAM head): epoch 1/1: train_loss" in line for line in lines) == 1
    assert "demo images: 48/48 images (100%)" in result.stderr


def test_analyze_with_chosen_methods_and_no_quality(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cam_core.analysis.artifacts import read_artifacts

    out = tmp_path / "art"
    args = ["-q", "analyze", "--model", str(tiny_model_dir), "--workers", "0", "--out", str(out)]
    assert main([*args, "--methods", "gradcam,cam", "--layer", "body.3", "--no-quality"]) == 0
    art = read_artifacts(out)
    assert list(art.maps) == ["gradcam", "cam"]
    assert art.manifest.methods["gradcam"].layer == "body.3"
    assert art.manifest.methods["cam"].layer == "body"
    assert art.maps["gradcam"].shape[-1] == 2 * art.maps["cam"].shape[-1]
    assert art.manifest.quality == {} and not any("." in c for c in art.table.columns)
    # A second analysis with fewer methods leaves no stale map files behind.
    assert main([*args, "--methods", "cam", "--quality-n", "3"]) == 0
    assert sorted(p.name for p in (out / "maps").iterdir()) == ["cam.npy"]
    art = read_artifacts(out)
    assert art.manifest.evaluation["sample_size"] == 3
    assert int(art.table["deletion_auc.cam"].notna().sum()) == 3
    capsys.readouterr()
    for bad, message in (("cam,gradcum", "unknown explanation method 'gradcum'"),):
        with pytest.raises(SystemExit):
            main([*args, "--methods", bad])
        assert message in capsys.readouterr().err
    assert main([*args, "--methods", "gradcam", "--layer", "body.42", "--no-quality"]) == 2
    assert "no layer 'body.42'" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "maps").iterdir()) == ["cam.npy"]  # untouched


def test_predict_with_another_method_writes_its_overlays(
    tiny_model_dir: Path,
    tiny_dataset: Dataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = str(tiny_dataset.samples[2].path)
    args = ["-q", "predict", "--model", str(tiny_model_dir), image]
    assert main([*args[:4], "--method", "layercam", "--out-dir", str(tmp_path), image]) == 0
    assert len(list(tmp_path.glob("*.png"))) == 2
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[0])["probs"] == json.loads(lines[1])["probs"]


def test_analyze_takes_the_task_from_the_model_card(
    quick_breed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cam_core.analysis.artifacts import read_artifacts
    from cam_core.modelling.model_files import read_card

    card = read_card(quick_breed_run / "model")
    assert card.data["task"] == "breed" and len(card.classes) == 6
    assert "two stages" in card.training["recipe"]
    assert "the new head at 10x the body's learning rate" in card.training["recipe"]
    base = ["-q", "analyze", "--model", str(quick_breed_run / "model"), "--no-quality"]
    base += ["--methods", "cam", "--data", card.data["root"], "--workers", "0"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    art = read_artifacts(tmp_path / "a")
    assert art.manifest.classes == card.classes and art.manifest.data["task"] == "breed"
    assert set(art.table["label"]) <= set(card.classes)
    capsys.readouterr()
    assert main([*base, "--task", "species", "--out", str(tmp_path / "b")]) == 2
    assert "the data has classes the model does not know: cat, dog" in capsys.readouterr().err


def test_the_class_budget_of_analyze_and_predict(
    quick_breed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Six breeds: gradient maps of three classes per image by default (true class first,
    then by probability), of every class with ``all``; exact CAM keeps every class."""
    from cam_core.analysis.artifacts import read_artifacts
    from cam_core.modelling.model_files import read_card

    model = quick_breed_run / "model"
    card = read_card(model)
    base = ["-q", "analyze", "--model", str(model), "--methods", "cam,gradcam,layercam"]
    base += ["--data", card.data["root"], "--workers", "0", "--quality-n", "4"]
    base += ["--precision", "fp32"]
    assert main([*base, "--out", str(tmp_path / "k3")]) == 0
    art = read_artifacts(tmp_path / "k3")
    n = len(art.table)
    assert art.maps["cam"].shape[:2] == (n, 6) and "cam" not in art.map_classes
    for name in ("gradcam", "layercam"):
        assert art.maps[name].shape[:2] == (n, 3)
        assert art.manifest.methods[name].classes_file == f"maps/{name}.classes.npy"
    slots = art.map_classes["gradcam"]
    truth = art.table["label"].map(card.classes.index).to_numpy()
    assert (slots[:, 0] == truth).all()
    probs = art.table[[f"prob_{c}" for c in card.classes]].to_numpy()
    pred = probs.argmax(axis=1)
    assert all(pred[i] in slots[i] for i in range(n))
    assert (np.sort(slots, axis=1)[:, 1:] != np.sort(slots, axis=1)[:, :-1]).all()  # distinct
    row = next(r for r in range(1, n) if list(slots[r]) != list(slots[0]))  # not the first
    k = int(slots[row, 2])
    assert np.allclose(art.image_maps("gradcam", row)[k], art.maps["gradcam"][row, 2])
    missing = next(c for c in range(6) if c not in slots[row])
    assert np.isnan(art.image_maps("gradcam", row)[missing]).all()
    assert not art.has_map("gradcam", row, missing) and art.has_map("cam", row, missing)
    # Deletion/insertion scored the true class's map, which the budget always holds.
    assert int(art.table["deletion_auc.gradcam"].notna().sum()) == 4

    assert main([*base, "--classes-per-image", "all", "--out", str(tmp_path / "all")]) == 0
    every = read_artifacts(tmp_path / "all")
    assert every.maps["gradcam"].shape[:2] == (n, 6) and not every.map_classes
    assert np.allclose(
        every.maps["gradcam"][row, k], art.maps["gradcam"][row, 2], atol=2e-3
    )  # float16 storage
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*base, "--classes-per-image", "0", "--out", str(tmp_path / "bad")])
    assert "classes per image must be 'all' or a whole number" in capsys.readouterr().err

    image = str(art.table["path"].iloc[0])
    out = tmp_path / "overlays"
    predict = ["-q", "predict", "--model", str(model), "--method", "gradcam"]
    predict += ["--precision", "fp32"]
    assert main([*predict, "--classes-per-image", "2", "--out-dir", str(out), image]) == 0
    pngs = [p.name for p in out.glob("*.png")]
    assert len(pngs) == 2
    for c in np.argsort(-probs[0])[:2]:
        assert any(name.endswith(f"_{card.classes[c]}.png") for name in pngs)


def test_layer_auto_and_the_layers_command(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cam_core.analysis.artifacts import read_artifacts

    out = tmp_path / "art"
    args = ["-q", "analyze", "--model", str(tiny_model_dir), "--workers", "0", "--out", str(out)]
    assert main([*args, "--layer", "auto", "--layer-n", "4", "--no-quality"]) == 0
    manifest = read_artifacts(out).manifest
    choice = manifest.layer_choice
    assert choice is not None and choice.sample_size == 4 and choice.method == "gradcam"
    assert [c.layer for c in choice.candidates] == ["body", "body.5", "body.3"]
    assert manifest.methods["gradcam"].layer == choice.chosen
    assert manifest.methods["cam"].layer == "body"  # exact CAM reads the body whatever the choice
    assert manifest.timings["layer choice"] == choice.seconds
    capsys.readouterr()
    layers = ["-q", "layers", "--model", str(tiny_model_dir), "--n", "4"]
    assert main([*layers, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["chosen"] == choice.chosen  # same seed, same sample: same choice
    assert [c["layer"] for c in printed["candidates"]] == ["body", "body.5", "body.3"]
    assert main([*layers, "--candidates", "body.3,body"]) == 0
    text = capsys.readouterr().out
    assert "body.3" in text and "12×12" in text and "chosen: body" in text
    assert main([*layers, "--candidates", "body"]) == 0
    assert "the model has one candidate layer" in capsys.readouterr().out
    assert main([*layers, "--candidates", "body,body.99"]) == 2
    assert "no layer 'body.99'" in capsys.readouterr().err
