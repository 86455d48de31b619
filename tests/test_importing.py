"""Importing classifiers trained elsewhere: torchvision, timm and fastai weights, never pickles."""

from __future__ import annotations

import json
import os
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from torchvision import models as tv_models

from cam_core.analysis.artifacts import read_artifacts
from cam_core.analysis.pipeline import (
    AnalyzeConfig,
    analyze,
    folder_data_config,
    training_data_config,
)
from cam_core.analysis.predict import predict_images
from cam_core.cli import main
from cam_core.data.sources import Dataset
from cam_core.errors import DataSourceError, ImportModelError, MethodError
from cam_core.evaluation.suite import QualityConfig
from cam_core.intake.images import to_model_tensor
from cam_core.modelling.importing import ImportConfig, import_model, read_weights
from cam_core.modelling.model_files import load_model
from cam_core.modelling.models import CamNet, SplitNet

SIZE = 64
SPECIES = ("cat", "dog")
# Torchvision architecture → whether exact CAM applies (GAP + one linear layer).
ARCHS = {
    "resnet18": True,
    "densenet121": True,
    "mobilenet_v3_small": False,
    "efficientnet_b0": True,
}


def _save(model: torch.nn.Module, folder: Path, fmt: str) -> Path:
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        path = folder / "weights.safetensors"
        save_file(state, str(path))
    else:
        path = folder / "weights.pth"
        torch.save(state, path)
    return path


def _inputs(dataset: Dataset, n: int = 4) -> torch.Tensor:
    paths = [s.path for s in dataset.samples[:n]]
    return torch.stack(
        [
            to_model_tensor(
                Image.open(p).convert("RGB"), SIZE, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            )
            for p in paths
        ]
    )


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_imported_model_predicts_like_the_original(
    arch: str, fmt: str, tmp_path: Path, tiny_dataset: Dataset
) -> None:
    torch.manual_seed(0)
    original = tv_models.get_model(arch, weights=None, num_classes=2).eval()
    weights = _save(original, tmp_path, fmt)
    card = import_model(ImportConfig(arch, weights, SPECIES, image_size=SIZE), tmp_path / "m")
    loaded = load_model(tmp_path / "m", "cpu")
    x = _inputs(tiny_dataset)
    with torch.no_grad():
        expected, got = original(x), loaded.net(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert isinstance(loaded.net, CamNet) is ARCHS[arch]
    assert card.provenance["source_sha256"] and card.provenance["arch"] == arch
    assert (card.provenance["methods"]["cam"] == "applies") is ARCHS[arch]
    assert card.provenance["methods"]["gradcam"] == "applies"


def test_exact_cam_of_an_imported_resnet_is_mean_plus_bias(tmp_path: Path) -> None:
    torch.manual_seed(1)
    original = tv_models.resnet18(num_classes=3).eval()
    with torch.no_grad():
        original.fc.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    import_model(
        ImportConfig("resnet18", _save(original, tmp_path, "pth"), ("a", "b", "c"), 96),
        tmp_path / "m",
    )
    net = load_model(tmp_path / "m", "cpu").net
    assert isinstance(net, CamNet) and net.bias is not None
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        logits, maps = net.forward_with_maps(x)
        expected = original(x)
    assert maps.shape == (2, 3, 3, 3)
    torch.testing.assert_close(maps.mean((2, 3)) + net.bias, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_analysing_a_folder_with_an_imported_model(
    arch: str, tmp_path: Path, tiny_dataset: Dataset
) -> None:
    torch.manual_seed(0)
    original = tv_models.get_model(arch, weights=None, num_classes=2).eval()
    weights = _save(original, tmp_path, "pth")
    model_dir = tmp_path / "m"
    import_model(ImportConfig(arch, weights, SPECIES, image_size=SIZE), model_dir)
    data = folder_data_config(model_dir, str(tiny_dataset.root))
    assert not data.split
    manifest = analyze(
        model_dir,
        tmp_path / "a",
        data,
        AnalyzeConfig(
            batch_size=8,
            num_workers=0,
            precision="fp32",  # compared with the original model in fp32 below
            # The quality suite on a head without CAM (the others: predictions and maps only).
            quality=QualityConfig(sample_n=6, sanity_n=4) if not ARCHS[arch] else None,
        ),
    )
    art = read_artifacts(tmp_path / "a")
    assert manifest.n_images == len(tiny_dataset.samples)  # every image, no split
    assert ("cam" in art.maps) is ARCHS[arch]
    if not ARCHS[arch]:
        assert "global average pooling" in manifest.unavailable["cam"]
    grad = np.asarray(art.maps["gradcam"], dtype=np.float32)
    assert grad.shape[:2] == (len(tiny_dataset.samples), 2)
    assert np.isfinite(grad).all() and (grad.max(axis=(2, 3)) > 0).any()
    # Logits in the table are the original model's on the same preprocessed input.
    x = _inputs(tiny_dataset, len(tiny_dataset.samples))
    with torch.no_grad():
        expected = original(x).numpy()
    logits = art.table[[f"logit_{name}" for name in SPECIES]].to_numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
    assert art.table["pred"].tolist() == [SPECIES[k] for k in expected.argmax(1)]


def _fastai_learner(dataset: Dataset) -> object:
    from fastai.vision.all import ImageDataLoaders, Resize, vision_learner

    dls = ImageDataLoaders.from_name_func(
        dataset.root,
        [s.path for s in dataset.samples],
        _species,
        item_tfms=Resize(SIZE),
        bs=4,
        num_workers=0,
        device=torch.device("cpu"),
    )
    return vision_learner(dls, tv_models.resnet18, pretrained=False, normalize=False)


def _species(path: Path) -> str:
    return "cat" if Path(path).name[:1].isupper() else "dog"


def test_fastai_learn_save_imports_and_export_pkl_is_refused(
    tmp_path: Path, tiny_dataset: Dataset
) -> None:
    learn = _fastai_learner(tiny_dataset)
    learn.path = tmp_path  # type: ignore[attr-defined]
    learn.fit(1)  # type: ignore[attr-defined]  # so that the file holds optimizer state too
    saved = learn.save("stage")  # type: ignore[attr-defined]
    with pytest.raises(pickle.UnpicklingError, match="fastcore.foundation.L"):
        torch.load(saved, weights_only=True)  # what plain weights-only loading says
    vocab = tuple(learn.dls.vocab)  # type: ignore[attr-defined]
    with pytest.raises(ImportModelError, match="looks like a file from fastai's learn.save; add"):
        import_model(ImportConfig("resnet18", saved, vocab, SIZE), tmp_path / "plain")
    card = import_model(ImportConfig("resnet18", saved, vocab, SIZE, fastai=True), tmp_path / "m")
    assert card.provenance["methods"]["cam"] != "applies"  # fastai's head: concat pool, BN, MLP
    net = load_model(tmp_path / "m", "cpu").net
    assert isinstance(net, SplitNet)
    model = learn.model.eval()  # type: ignore[attr-defined]
    x = _inputs(tiny_dataset)
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x), atol=1e-5, rtol=1e-5)

    learn.export(tmp_path / "export.pkl")  # type: ignore[attr-defined]
    with pytest.raises(ImportModelError, match="only pickle can load.*learn.save"):
        import_model(
            ImportConfig("resnet18", tmp_path / "export.pkl", vocab, SIZE, fastai=True),
            tmp_path / "x",
        )
    assert not (tmp_path / "x" / "model.json").exists()


class _Payload:
    """Unpickling this creates the canary file (through os.system)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.canary}",)


@pytest.mark.parametrize("name", ["weights.pth", "model.pkl", "zipped.pt"])
def test_a_pickle_payload_is_refused_without_running(tmp_path: Path, name: str) -> None:
    canary = tmp_path / "canary"
    payload = _Payload(canary)
    path = tmp_path / name
    if name == "zipped.pt":
        torch.save({"fc.weight": torch.zeros(2, 2), "evil": payload}, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    # The payload is live: plain unpickling would create the canary.
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(live)))
    assert live.exists()
    with pytest.raises(ImportModelError, match="pickle"):
        read_weights(path)
    assert not canary.exists()
    code = main(
        [
            "import",
            "--arch",
            "resnet18",
            "--weights",
            str(path),
            "--classes",
            "a,b",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    assert code != 0 and not canary.exists() and not (tmp_path / "m" / "model.json").exists()


def test_weights_that_do_not_fit_name_the_first_mismatch(tmp_path: Path) -> None:
    weights = _save(tv_models.resnet18(num_classes=3), tmp_path, "pth")
    with pytest.raises(ImportModelError, match="3 outputs but 2 classes"):
        import_model(ImportConfig("resnet18", weights, ("a", "b")), tmp_path / "m")
    with pytest.raises(ImportModelError, match=r"resnet34: 'layer1.2.conv1.weight' is missing"):
        import_model(ImportConfig("resnet34", weights, ("a", "b", "c")), tmp_path / "m")
    with pytest.raises(ImportModelError, match="unknown architecture 'resnet1000'"):
        import_model(ImportConfig("resnet1000", weights, ("a", "b", "c")), tmp_path / "m")
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(ImportModelError, match="not a PyTorch weights file"):
        read_weights(text)
    assert not (tmp_path / "m").exists() or not (tmp_path / "m" / "model.json").exists()


def test_timm_models_import(tmp_path: Path, tiny_dataset: Dataset) -> None:
    import timm

    torch.manual_seed(0)
    original = timm.create_model("resnet18", pretrained=False, num_classes=2).eval()
    weights = _save(original, tmp_path, "safetensors")
    card = import_model(ImportConfig("timm:resnet18", weights, SPECIES, SIZE), tmp_path / "m")
    net = load_model(tmp_path / "m", "cpu").net
    x = _inputs(tiny_dataset)
    with torch.no_grad():
        torch.testing.assert_close(net(x), original(x), atol=1e-5, rtol=1e-5)
    assert "timm" in card.provenance["methods"]["cam"]
    from cam_core.methods import get_method

    maps = get_method("gradcam").explain(net, x, "body")
    assert maps.shape == (4, 2, 2, 2)


def test_data_for_imported_models(tmp_path: Path, tiny_dataset: Dataset) -> None:
    weights = _save(tv_models.resnet18(num_classes=3), tmp_path, "pth")
    model_dir = tmp_path / "m"
    import_model(ImportConfig("resnet18", weights, ("cat", "dog", "bird"), SIZE), model_dir)
    with pytest.raises(DataSourceError, match="imported model.*--data"):
        training_data_config(model_dir)
    # Folder classes may be a subset of the model's classes ...
    data = folder_data_config(model_dir, str(tiny_dataset.root))
    assert data.task == "species" and not data.split
    # ... but a class the model does not know is refused.
    folder = tmp_path / "folder"
    for label in ("cat", "horse"):
        (folder / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (32, 32), (i * 90, 20, 40)).save(folder / label / f"{i}.png")
    with pytest.raises(DataSourceError, match="does not know: horse"):
        analyze(model_dir, tmp_path / "a", folder_data_config(model_dir, str(folder)))
    assert not (tmp_path / "a" / "manifest.json").exists()
    # Asking for exact CAM on a model without a CAM head names the reason.
    mobile = _save(tv_models.mobilenet_v3_small(num_classes=2), tmp_path, "safetensors")
    import_model(ImportConfig("mobilenet_v3_small", mobile, SPECIES, SIZE), tmp_path / "mb")
    with pytest.raises(MethodError, match="Hardswish"):
        analyze(
            tmp_path / "mb",
            tmp_path / "b",
            folder_data_config(tmp_path / "mb", str(tiny_dataset.root)),
            AnalyzeConfig(methods=("cam",), quality=None, num_workers=0),
        )


def _import_mobilenet(weights: Path, *args: str) -> int:
    return main(["import", "--arch", "mobilenet_v3_small", "--weights", str(weights), *args])


def test_cli_import_analyze_predict(tmp_path: Path, tiny_dataset: Dataset, capsys) -> None:  # type: ignore[no-untyped-def]
    weights = _save(tv_models.mobilenet_v3_small(num_classes=2), tmp_path, "pth")
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\n")
    model_dir = tmp_path / "m"
    assert (
        _import_mobilenet(
            weights,
            "--classes-file",
            str(classes),
            "--image-size",
            str(SIZE),
            "--out",
            str(model_dir),
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "cam" in out["not_offered"] and "gradcam" in out["methods"]
    assert (
        main(
            [
                "analyze",
                "--model",
                str(model_dir),
                "--data",
                str(tiny_dataset.root),
                "--no-quality",
                "--workers",
                "0",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    art = read_artifacts(tmp_path / "a")
    assert "cam" not in art.maps and len(art.table) == len(tiny_dataset.samples)
    capsys.readouterr()
    image = str(tiny_dataset.samples[0].path)
    assert main(["predict", "--model", str(model_dir), image]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["method"] == "gradcam"
    loaded = load_model(model_dir, "cpu")
    with pytest.raises(MethodError, match="exact CAM needs"):
        predict_images(loaded, [(image, Image.open(image).convert("RGB"))], method="cam")
    assert (
        _import_mobilenet(weights, "--classes", "cat,dog,bird", "--out", str(tmp_path / "bad")) != 0
    )
    assert "2 outputs but 3 classes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("a",)}, "at least two classes"),
        ({"classes": ("a", "a")}, "distinct"),
        ({"image_size": 15}, "image size 15 is too small"),
        ({"mean": (0.5, 0.5)}, "three values each"),
        ({"std": (0.5, 0.5, 0.5, 0.5)}, "three values each"),
        ({"std": (0.5, 0.0, 0.5)}, "std above 0"),
    ],
)
def test_import_settings_are_checked(kwargs: dict, message: str) -> None:
    settings = {"arch": "resnet18", "weights": Path("w.pth"), "classes": ("a", "b"), **kwargs}
    with pytest.raises(ImportModelError, match=message):
        ImportConfig(**settings)
    ImportConfig("resnet18", Path("w.pth"), ("a", "b"), image_size=16)


def test_state_dicts_are_unwrapped_and_anything_else_refused(tmp_path: Path) -> None:
    tensors = {"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)}
    torch.save({"state_dict": tensors, "epoch": 3}, tmp_path / "wrapped.pth")
    assert set(read_weights(tmp_path / "wrapped.pth")) == {"fc.weight", "fc.bias"}
    torch.save({f"module.{k}": v for k, v in tensors.items()}, tmp_path / "ddp.pth")
    assert set(read_weights(tmp_path / "ddp.pth")) == {"fc.weight", "fc.bias"}
    mixed = {"module.fc.weight": tensors["fc.weight"], "fc.bias": tensors["fc.bias"]}
    torch.save(mixed, tmp_path / "mixed.pth")
    assert set(read_weights(tmp_path / "mixed.pth")) == set(mixed)  # not all prefixed: kept
    torch.save({"model": tensors, "opt": {}}, tmp_path / "learner.pth")
    with pytest.raises(ImportModelError, match="learn.save file; add --fastai"):
        read_weights(tmp_path / "learner.pth")
    assert set(read_weights(tmp_path / "learner.pth", fastai=True)) == set(tensors)
    torch.save(tensors, tmp_path / "plain.pth")
    assert set(read_weights(tmp_path / "plain.pth", fastai=True)) == set(tensors)
    torch.save({"model": tensors, "epoch": 3}, tmp_path / "checkpoint.pth")  # torchvision's
    assert set(read_weights(tmp_path / "checkpoint.pth")) == set(tensors)
    torch.save({"state_dict": tensors}, tmp_path / "lightning.pth")
    assert set(read_weights(tmp_path / "lightning.pth", fastai=True)) == set(tensors)
    torch.save({"model": [1, 2], "opt": {}}, tmp_path / "odd.pth")
    with pytest.raises(ImportModelError, match="holds no state dict"):  # it has a 'model' entry
        read_weights(tmp_path / "odd.pth", fastai=True)
    torch.save({"weights": [1, 2]}, tmp_path / "other.pth")
    with pytest.raises(ImportModelError, match="no 'model' entry"):
        read_weights(tmp_path / "other.pth", fastai=True)
    for name, payload in (
        ("empty.pth", {}),
        ("list.pth", [torch.ones(1)]),
        ("values.pth", {"a": 1}),
    ):
        torch.save(payload, tmp_path / name)
        with pytest.raises(ImportModelError, match="holds no state dict"):
            read_weights(tmp_path / name)
    with pytest.raises(ImportModelError, match="does not exist"):
        read_weights(tmp_path / "missing.pth")
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(ImportModelError, match="not a valid safetensors file"):
        read_weights(tmp_path / "bad.safetensors")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ImportModelError, match="not a PyTorch weights file"):
        read_weights(tmp_path / "empty.pt")


def test_fit_checks_run_in_order_and_name_the_first_problem() -> None:
    from cam_core.modelling.importing import check_fit

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    good = {k: v.clone() for k, v in model.state_dict().items()}
    check_fit(model, good, "tiny", 2)
    wrong_classes = {**good, "2.weight": torch.zeros(5, 4), "2.bias": torch.zeros(5)}
    with pytest.raises(ImportModelError, match="5 outputs but 2 classes"):
        check_fit(model, wrong_classes, "tiny", 2)
    wider = {**good, "2.weight": torch.zeros(2, 8)}  # not a class-count problem: a shape one
    with pytest.raises(
        ImportModelError,
        match=r"'2.weight' has shape \(2, 8\) in the file, "
        r"\(2, 4\) in tiny",
    ):
        check_fit(model, wider, "tiny", 2)
    missing = {k: v for k, v in good.items() if k != "0.bias"}
    with pytest.raises(ImportModelError, match=r"'0.bias' is missing from the file \(first of 1"):
        check_fit(model, missing, "tiny", 2)
    headless = {k: v for k, v in good.items() if k != "2.weight"}  # the classifier's own weight
    with pytest.raises(ImportModelError, match=r"'2.weight' is missing from the file"):
        check_fit(model, headless, "tiny", 2)
    extra = {**good, "3.weight": torch.zeros(1), "4.weight": torch.zeros(1)}
    with pytest.raises(ImportModelError, match=r"the file has '3.weight'.*\(first of 2 unexp"):
        check_fit(model, extra, "tiny", 2)


def test_the_card_records_where_the_weights_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    import cam_core.modelling.architectures as architectures

    checked: list[int] = []
    check_cut = architectures._check_cut

    def recorded(model: torch.nn.Module, net: torch.nn.Module, size: int) -> None:
        checked.append(size)
        check_cut(model, net, size)

    monkeypatch.setattr(architectures, "_check_cut", recorded)
    torch.manual_seed(0)
    weights = _save(tv_models.mobilenet_v3_small(num_classes=3), tmp_path, "safetensors")
    card = import_model(
        ImportConfig("mobilenet_v3_small", weights, ("a", "b", "c"), 64, (0.4,) * 3, (0.2,) * 3),
        tmp_path / "m",
    )
    origin = card.provenance
    assert origin["source"] == str(weights.resolve()) and origin["arch"] == "mobilenet_v3_small"
    assert origin["source_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert origin["fastai"] is False and "Hardswish" in origin["head"]
    assert origin["methods"]["gradcam"] == "applies" and origin["methods"]["cam"] != "applies"
    assert card.n_features == 576 and card.mean == (0.4,) * 3 and card.std == (0.2,) * 3
    assert card.image_size == 64 and card.classes == ("a", "b", "c") and card.layer == "body"
    assert (tmp_path / "m" / "model.json").exists()
    assert checked == [64]  # the cut was checked at the model's input size
    # when, in UTC to the second
    imported = datetime.fromisoformat(origin["imported_at"])
    assert imported.utcoffset() == timedelta(0) and imported.microsecond == 0
    assert abs(datetime.now(UTC) - imported) < timedelta(minutes=10)


def test_a_vit_is_built_for_its_image_size(tmp_path: Path) -> None:
    """Weights of a ViT made for 64 px import at 64 px; made for 224 px, they are refused at
    64 px with the tensor that does not fit (its position embeddings)."""
    import timm

    from cam_core.modelling.architectures import build_classifier

    vit = build_classifier("vit_b_16", 2, image_size=64)
    assert vit.image_size == 64 and vit.seq_length == 17  # a 4×4 grid and the class token
    torch.manual_seed(0)
    small = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=2, img_size=64)
    weights = _save(small.eval(), tmp_path, "safetensors")
    card = import_model(
        ImportConfig("timm:vit_tiny_patch16_224", weights, SPECIES, 64), tmp_path / "m"
    )
    assert card.layer == "body.model.blocks.11.norm1"
    assert card.n_features == 192 and card.provenance["layer_grid"] == [192, 4, 4]
    assert card.provenance["tokens"] == {
        "family": "vit",
        "patch": 16,
        "prefix_tokens": 1,
        "last_stage_blocks": 12,
        "rollout": True,
        "placement": "patches",
    }
    assert "class token" not in card.provenance["methods"]["cam"]  # timm heads: not inspected
    assert card.provenance["methods"]["rollout"] == "applies"
    loaded = load_model(tmp_path / "m", "cpu")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.net(x), small(x), atol=1e-5, rtol=1e-5)
    big = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=2)
    with pytest.raises(ImportModelError, match=r"'pos_embed' has shape \(1, 197, 192\)"):
        import_model(
            ImportConfig("timm:vit_tiny_patch16_224", _save(big, tmp_path, "pth"), SPECIES, 64),
            tmp_path / "refused",
        )
    assert not (tmp_path / "refused" / "model.json").exists()


def test_a_torchvision_swin_gets_exact_cam_and_a_torchvision_vit_does_not(
    tmp_path: Path,
) -> None:
    from cam_core.modelling.architectures import to_classifier
    from tests.test_tokens import small_vit

    torch.manual_seed(0)
    swin = tv_models.swin_t(weights=None, num_classes=2).eval()
    card = import_model(
        ImportConfig("swin_t", _save(swin, tmp_path, "safetensors"), SPECIES, 64), tmp_path / "s"
    )
    assert card.provenance["methods"]["cam"] == "applies" and card.layer == "body"
    assert "window" in card.provenance["methods"]["rollout"]
    net = load_model(tmp_path / "s", "cpu").net
    assert isinstance(net, CamNet)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, maps = net.forward_with_maps(x)
        torch.testing.assert_close(logits, swin(x), atol=1e-4, rtol=1e-4)
    assert maps.shape == (2, 2, 2, 2)
    net_vit, reason = to_classifier(small_vit(classes=2), check_size=64)
    assert isinstance(net_vit, SplitNet) and "class token" in (reason or "")


def test_a_token_count_off_the_grid_or_an_unknown_token_model_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cam_core.methods import tokens
    from cam_core.modelling.architectures import body_channels, to_classifier
    from tests.test_tokens import small_vit

    net, _ = to_classifier(small_vit(), check_size=64)
    real = tokens.token_layout(net)
    assert real is not None
    wrong = type(real)(real.family, real.patch, 2, real.blocks, real.norm)
    monkeypatch.setattr("cam_core.modelling.architectures.token_layout", lambda _net: wrong)
    with pytest.raises(
        ImportModelError, match="17 tokens; without the 2 prefix token.*15 do not form a square"
    ):
        body_channels(net, 64)
    monkeypatch.setattr("cam_core.modelling.architectures.token_layout", lambda _net: None)
    with pytest.raises(ImportModelError, match=r"\(1, 17, 32\), not \(N, C, h, w\).*known vision"):
        body_channels(net, 64)


def test_a_vit_is_imported_analysed_and_predicted(vit_home: Path, tiny_dataset: Dataset) -> None:
    run = vit_home / "imports" / "vit"
    art = read_artifacts(run / "artifacts")
    manifest = art.manifest
    assert list(manifest.methods) == ["gradcam", "gradcampp", "layercam", "rollout"]
    assert "exact CAM" in manifest.unavailable["cam"]
    choice = manifest.layer_choice
    assert choice is not None and len(choice.candidates) == 3
    assert choice.chosen in [c.layer for c in choice.candidates]
    assert all(
        record.layer == choice.chosen
        for name, record in manifest.methods.items()
        if name != "rollout"
    )
    for name, record in manifest.methods.items():
        assert record.placement == "patches"
        assert art.maps[name].shape[-2:] == (4, 4)
    assert manifest.methods["rollout"].class_agnostic
    rollout = np.asarray(art.maps["rollout"], dtype=np.float32)
    np.testing.assert_array_equal(rollout[:, 0], rollout[:, 1])  # the same for every class
    assert set(manifest.quality) >= {"gradcam", "rollout", "random", "centre"}
    assert "deletion_auc" in manifest.quality["rollout"]
    assert "randomization_spearman" in manifest.quality["gradcam"]
    assert art.array("features.npy").shape == (len(art.table), 192)
    loaded = load_model(run / "model", "cpu")
    image = Image.open(tiny_dataset.samples[0].path).convert("RGB")
    for method in ("gradcam", "rollout"):
        (prediction,) = predict_images(
            loaded, [("a.png", image)], method=method, layer=choice.chosen
        )
        assert prediction.maps.shape[-2:] == (4, 4)
        assert json.loads(json.dumps(prediction.to_json()))["pred"] in SPECIES


def test_any_bytes_that_are_not_weights_are_refused_in_one_line(tmp_path: Path) -> None:
    """A text file or a cut-off download saved as .pt: a one-line refusal naming the first
    line of what went wrong (or the error's kind when it says nothing), never a traceback."""
    import random

    torch.save({"fc.weight": torch.ones(2, 3)}, tmp_path / "whole.pt")
    whole = (tmp_path / "whole.pt").read_bytes()
    cases = {"hello.pt": b"hello world", "cut.pt": whole[: len(whole) // 2], "empty.pt": b""}
    rng = random.Random(0)
    cases |= {f"noise{i}.pt": bytes(rng.randrange(256) for _ in range(1 + i)) for i in range(60)}
    # pickle protocol 2's first bytes, then noise: the decoder's own odd errors
    cases |= {f"pickle{i}.pt": b"\x80\x02" + rng.randbytes(1 + i) for i in range(60)}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImportModelError, match="is refused: it ") as caught:
            read_weights(tmp_path / name)
        assert "\n" not in str(caught.value)
    with pytest.raises(ImportModelError, match=r"\(EOFError\)"):
        read_weights(tmp_path / "empty.pt")
    with pytest.raises(ImportModelError, match=r"\(PytorchStreamReader failed reading zip"):
        read_weights(tmp_path / "cut.pt")


def test_weights_saved_on_a_gpu_import_on_a_cpu(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A checkpoint whose tensors were saved from CUDA (their storages say "cuda:0") loads on
    a machine without one: everything is mapped to the CPU."""
    import torch.serialization as serialization

    tensors = {"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)}
    with monkeypatch.context() as patched:
        patched.setattr(serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(tensors, tmp_path / "gpu.pth")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):  # as saved, it does not load here
            torch.load(tmp_path / "gpu.pth", weights_only=True)
    state = read_weights(tmp_path / "gpu.pth")
    assert all(t.device.type == "cpu" for t in state.values())
    assert torch.equal(state["fc.weight"], tensors["fc.weight"])
