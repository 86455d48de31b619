"""bf16 / fp16 autocast: which precision runs, and bf16 agreeing with fp32 on a trained demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cam_core.analysis.artifacts import read_artifacts, read_manifest
from cam_core.analysis.cams import explain_files
from cam_core.analysis.pipeline import AnalyzeConfig, analyze, training_data_config
from cam_core.data.sources import load_dataset
from cam_core.modelling import precision as precision_module
from cam_core.modelling.model_files import load_model
from cam_core.modelling.precision import resolve_precision


def test_auto_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cuda) == "fp16"
    monkeypatch.setattr(precision_module, "native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(precision_module, "native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"  # asked for: emulated where not native
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", cpu)
    with pytest.raises(ValueError, match="unknown precision"):
        AnalyzeConfig(precision="half")


def test_bf16_agrees_with_fp32_on_the_demo(trained_species_run: Path) -> None:
    model = load_model(trained_species_run / "model", "cpu")
    dataset = load_dataset(training_data_config(trained_species_run / "model"))
    paths = [s.path for s in dataset.valid_samples]
    fp32 = explain_files(model, paths, ("cam",), num_workers=0, precision="fp32")
    bf16 = explain_files(model, paths, ("cam",), num_workers=0, precision="bf16")
    agree = (fp32.logits.argmax(1) == bf16.logits.argmax(1)).mean()
    assert agree >= 0.995
    maps32 = fp32.maps["cam"].astype(np.float32)
    maps16 = bf16.maps["cam"].astype(np.float32)
    pred = fp32.logits.argmax(1)
    rho = [
        spearmanr(maps32[i, k].ravel(), maps16[i, k].ravel()).statistic for i, k in enumerate(pred)
    ]
    assert float(np.median(rho)) >= 0.99
    # Exact CAM under bf16: each map's mean is still its logit, to bf16 precision.
    np.testing.assert_allclose(maps16.mean(axis=(2, 3)), bf16.logits, rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(bf16.logits, fp32.logits, rtol=5e-2, atol=5e-2)


def test_the_manifest_records_the_precision(tiny_model_dir: Path, tmp_path: Path) -> None:
    analyze(
        tiny_model_dir,
        tmp_path / "a",
        cfg=AnalyzeConfig(
            methods=("cam", "gradcam"), quality=None, num_workers=0, precision="bf16"
        ),
    )
    manifest = read_manifest(tmp_path / "a")
    assert manifest.data["precision"] == "bf16"
    assert manifest.methods["cam"].precision == "bf16"
    assert manifest.methods["gradcam"].precision == "fp32"


def test_deletion_insertion_in_bf16_agrees_with_fp32_on_the_demo(
    trained_species_run: Path,
) -> None:
    """The evidence's perturbed passes in bf16 (``--precision auto`` on a CPU with native bf16)
    give the same areas as fp32: mean difference <= 0.01 for the CAM maps and a baseline."""
    from cam_core.analysis.cams import load_images
    from cam_core.evaluation.baselines import baseline_maps
    from cam_core.evaluation.faithfulness import shared_perturbation_curves
    from cam_core.methods.budget import maps_for

    art = read_artifacts(trained_species_run / "artifacts")
    model = load_model(trained_species_run / "model", "cpu")
    rows = np.random.default_rng(0).choice(len(art.table), size=12, replace=False)
    images = torch.cat(list(load_images(model, [Path(art.table["path"][r]) for r in rows], 64, 0)))
    targets = art.table["label"].map(model.card.classes.index).to_numpy()[rows]
    maps = {
        "cam": maps_for(art.maps["cam"], art.map_classes.get("cam"), rows, targets),
        "random": baseline_maps("random", len(rows), *art.maps["cam"].shape[2:]),
    }
    runs = {
        precision: shared_perturbation_curves(model.net, images, maps, targets, 8, 64, precision)
        for precision in ("fp32", "bf16")
    }
    for name in maps:
        for area in ("deletion_auc", "insertion_auc"):
            fp32 = getattr(runs["fp32"][name], area)
            bf16 = getattr(runs["bf16"][name], area)
            assert abs(float(np.mean(bf16 - fp32))) <= 0.01, (name, area)
            assert not np.array_equal(bf16, fp32)  # the bf16 passes did run in bf16


def test_explicit_precisions_and_the_bf16_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("fp32", cuda) == "fp32"
    assert resolve_precision("fp16", cuda) == "fp16" and resolve_precision("bf16", cuda) == "bf16"
    expected = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert precision_module.native_bf16() is expected

    def broken() -> bool:
        raise RuntimeError("no oneDNN")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", broken)
    assert precision_module.native_bf16() is False
    assert resolve_precision("auto", cpu) == "fp32"


def test_autocast_runs_in_the_precision_asked_for() -> None:
    from cam_core.modelling.precision import autocast

    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    cpu = torch.device("cpu")
    with autocast("fp32", cpu):
        assert layer(x).dtype == torch.float32
    with autocast("bf16", cpu):
        assert layer(x).dtype == torch.bfloat16
