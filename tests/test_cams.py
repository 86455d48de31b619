from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cam_core.analysis.cams import explain_batch, explain_files
from cam_core.data.sources import Dataset
from cam_core.methods.placement import upsample_maps
from cam_core.modelling.model_files import load_model
from cam_core.modelling.models import build_body


@pytest.fixture(scope="module")
def maps_and_logits(tiny_model_dir: Path, tiny_dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(tiny_model_dir, "cpu")
    paths = [s.path for s in tiny_dataset.samples]
    run = explain_files(model, paths, ("cam",), batch_size=64, num_workers=0)
    return run.logits, run.maps["cam"]


def test_shapes_dtypes_and_finiteness(
    maps_and_logits: tuple[np.ndarray, np.ndarray], tiny_dataset: Dataset
) -> None:
    logits, maps = maps_and_logits
    n = len(tiny_dataset.samples)
    assert logits.shape == (n, 2) and logits.dtype == np.float32
    assert maps.shape == (n, 2, 6, 6) and maps.dtype == np.float16
    assert np.isfinite(maps).all() and np.isfinite(logits).all()


def test_the_mean_of_each_class_map_is_its_logit(
    maps_and_logits: tuple[np.ndarray, np.ndarray],
) -> None:
    logits, maps = maps_and_logits
    means = maps.astype(np.float32).mean(axis=(2, 3))
    scale = np.abs(maps.astype(np.float32)).max()
    assert np.allclose(means, logits, atol=2e-3 * max(1.0, scale), rtol=1e-3)
    # The two classes really get different maps.
    assert not np.allclose(maps[:, 0], maps[:, 1])


def test_batch_size_does_not_change_results(
    tiny_model_dir: Path, tiny_dataset: Dataset, maps_and_logits: tuple[np.ndarray, np.ndarray]
) -> None:
    model = load_model(tiny_model_dir, "cpu")
    paths = [s.path for s in tiny_dataset.samples]
    run = explain_files(model, paths, ("cam", "gradcam"), batch_size=5, num_workers=0)
    assert np.allclose(run.logits, maps_and_logits[0], atol=1e-4)
    assert np.array_equal(run.maps["cam"], maps_and_logits[1])
    whole = explain_files(model, paths, ("gradcam",), batch_size=64, num_workers=0)
    assert np.allclose(run.maps["gradcam"], whole.maps["gradcam"], atol=2e-3)


def test_upsampling_keeps_shape_and_values() -> None:
    flat = np.full((2, 3, 4), 1.5, np.float16)
    up = upsample_maps(flat, (12, 16))
    assert up.shape == (2, 12, 16) and up.dtype == np.float32
    assert np.allclose(up, 1.5)
    ramp = np.arange(16, dtype=np.float32).reshape(4, 4)
    big = upsample_maps(ramp, (40, 40))
    assert big.min() >= ramp.min() - 1e-5 and big.max() <= ramp.max() + 1e-5
    assert big[0, 0] < big[-1, -1]


def _receptive_field_centre(arch: str, size: int, cell: tuple[int, int]) -> tuple[float, float]:
    """Centroid ``(y, x)`` of the input pixels that cell ``cell`` of ``arch``'s body depends on.

    With every kernel an average filter the gradient is symmetric about the window's centre.
    """
    body = build_body(arch).eval()
    with torch.no_grad():
        for module in body.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0 / module.weight[0].numel())
    generator = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, size, size, generator=generator) + 0.5).requires_grad_(True)
    body(image)[0, :, cell[0], cell[1]].sum().backward()
    assert image.grad is not None
    weight = image.grad[0].abs().sum(0).double()
    index = torch.arange(size, dtype=torch.float64)
    total = weight.sum()
    return (
        float((weight.sum(1) * index).sum() / total),
        float((weight.sum(0) * index).sum() / total),
    )


@pytest.mark.parametrize(
    ("arch", "size", "grid"), [("democnn2", 96, 12), ("democnn", 96, 12), ("resnet18", 512, 16)]
)
def test_upsampling_puts_each_cell_on_its_receptive_field_centre(
    arch: str, size: int, grid: int
) -> None:
    cell = (grid // 2 - 1, grid // 2 - 2)
    centre_y, centre_x = _receptive_field_centre(arch, size, cell)
    one_hot = np.zeros((grid, grid), np.float32)
    one_hot[cell] = 1.0
    up = upsample_maps(one_hot, (size, size))
    peak_y, peak_x = np.unravel_index(int(np.argmax(up)), up.shape)
    assert abs(peak_y - centre_y) < 0.5 and abs(peak_x - centre_x) < 0.5
    assert up[peak_y, peak_x] == 1.0


@pytest.mark.parametrize(("arch", "side"), [("democnn2", 27), ("democnn", 59)])
def test_each_demo_cnn_cell_sees_a_window_of_its_receptive_field(arch: str, side: int) -> None:
    body = build_body(arch).eval()
    image = torch.rand(1, 3, 96, 96, requires_grad=True)
    body(image)[0, :, 6, 6].sum().backward()
    assert image.grad is not None
    rows, cols = torch.nonzero(image.grad[0].abs().sum(0)).unbind(1)
    assert int(rows.max() - rows.min()) + 1 == side
    assert int(cols.max() - cols.min()) + 1 == side
    # Centred on the cell's pixel (stride 8): rows 48 - 13 .. 48 + 13 for a 27 px window.
    assert int(rows.min() + rows.max()) == 2 * 48


def test_upsampling_interpolates_between_centres_and_holds_the_edge() -> None:
    ramp = np.array([[0.0, 4.0, 8.0]], np.float32)
    up = upsample_maps(ramp, (1, 12))
    assert np.allclose(up[0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8])


def test_maps_that_share_the_forward_pass_come_from_it(
    tiny_model_dir: Path, tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cam_core.analysis.cams import explain_batch
    from cam_core.analysis.predict import predict_images
    from cam_core.intake.images import load_image_file
    from cam_core.methods import get_method

    model = load_model(tiny_model_dir, "cpu")
    cam = get_method("cam")
    calls: list[str] = []
    shared = type(cam).explain_from_features

    def counted(self: object, net: nn.Module, features: torch.Tensor) -> object:
        calls.append("forward")
        return shared(cam, net, features)

    def refused(*args: object) -> torch.Tensor:
        raise AssertionError("the batch path ran a separate pass for maps of the forward pass")

    monkeypatch.setattr(type(cam), "explain_from_features", counted)
    monkeypatch.setattr(type(cam), "explain", refused)
    paths = [s.path for s in tiny_dataset.samples[:6]]
    run = explain_files(model, paths, ("gradcam", "cam"), batch_size=3, num_workers=0)
    assert calls == ["forward", "forward"]  # one shared pass per batch, nothing else
    means = run.maps["cam"].astype(np.float32).mean(axis=(2, 3))
    assert np.allclose(means, run.logits, atol=2e-3)
    # predict goes through the same path and gives the same numbers.
    images = [(str(p), load_image_file(p)) for p in paths]
    predicted = predict_images(model, images, "cam", batch_size=4, precision="fp32")
    assert np.allclose(np.stack([p.maps for p in predicted]), run.maps["cam"], atol=2e-3)
    assert np.allclose(np.stack([p.logits for p in predicted]), run.logits, atol=1e-4)
    # Without a method of the forward pass, the logits come from a plain forward pass.
    calls.clear()
    x = torch.randn(2, 3, 48, 48)
    batch = explain_batch(model, x, (get_method("gradcam"),))
    assert calls == [] and set(batch.maps) == {"gradcam"}
    assert torch.allclose(batch.logits, model.net(x).detach(), atol=1e-5)


def test_a_method_that_does_not_apply_is_refused_by_name(tiny_dataset: Dataset) -> None:
    from cam_core.errors import MethodError
    from cam_core.methods import checked_methods
    from cam_core.modelling.models import SplitNet

    net = SplitNet(build_body("democnn2"), nn.Sequential(nn.Flatten(), nn.LazyLinear(2)), "a MLP")
    with pytest.raises(MethodError, match="CAM \\(exact\\) does not apply to this model: a MLP"):
        checked_methods(net, ("gradcam", "cam"))
    assert [m.name for m in checked_methods(net, ("gradcam",))] == ["gradcam"]


def test_a_batch_s_features_signatures_properties_and_budget(tiny_model_dir: Path) -> None:
    from cam_core.analysis.cams import explain_batch
    from cam_core.evaluation.duplicates import image_signatures
    from cam_core.evaluation.slices import pixel_properties
    from cam_core.methods import get_method
    from cam_core.methods.budget import budget_classes

    model = load_model(tiny_model_dir, "cpu")
    x = torch.randn(4, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    truth = np.array([1, 0, -1, 1])
    methods = (get_method("gradcam"), get_method("cam"))
    batch = explain_batch(model, x, methods, truth=truth, per_image=1)
    with torch.inference_mode():
        body = model.net.get_submodule("body")(x)
    torch.testing.assert_close(batch.features, body.mean(dim=(2, 3)), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(batch.signatures, image_signatures(x))
    mean = torch.tensor(model.card.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.card.std).view(1, 3, 1, 1)
    np.testing.assert_allclose(batch.properties, pixel_properties((x * std + mean).clamp(0, 1)))
    expected = budget_classes(batch.logits.numpy(), truth, 1)
    assert batch.classes is not None
    np.testing.assert_array_equal(batch.classes, expected)
    assert batch.classes[:, 0].tolist()[:2] == [1, 0]
    assert list(batch.maps) == ["gradcam", "cam"]
    assert batch.maps["cam"].shape[1] == 2 and batch.maps["gradcam"].shape[1] == 1
    assert set(batch.seconds) == {"gradcam", "cam"}
    only_cam = explain_batch(model, x, (get_method("cam"),))
    assert only_cam.classes is None


def _in_threes(model: object, paths: list[Path], **kwargs: object) -> object:
    """Grad-CAM of ``paths`` in batches of three, decoded in this process."""
    return explain_files(model, paths, ("gradcam",), batch_size=3, num_workers=0, **kwargs)  # type: ignore[arg-type]


def test_files_in_batches_keep_each_row_s_truth_and_report_progress(
    tiny_model_dir: Path, tiny_dataset: Dataset
) -> None:
    model = load_model(tiny_model_dir, "cpu")
    paths = [s.path for s in tiny_dataset.samples[:7]]
    truth = np.array([1, 0, 0, 1, 1, 0, 1])
    seen: list[tuple[str, float]] = []
    run = _in_threes(
        model,
        paths,
        truth=truth,
        per_image=1,
        progress=lambda message, fraction: seen.append((message, fraction)),
        what="maps",
    )
    assert run.classes is not None and run.classes[:, 0].tolist() == truth.tolist()
    assert run.features.dtype == np.float16 and run.features.shape == (7, 128)
    assert run.signatures.shape[0] == 7 and run.properties.shape == (7, 4)
    assert [round(f, 3) for _, f in seen] == [round(3 / 7, 3), round(6 / 7, 3), 1.0]
    assert seen[-1][0] == "maps (7/7 images)"
    assert run.seconds["gradcam"] > 0
    none = explain_files(model, [], ("cam", "gradcam"), num_workers=0)
    assert none.logits.shape == (0, 2) and none.features.shape == (0, 128)
    assert none.maps["cam"].shape[:2] == (0, 2) and none.properties.shape == (0, 4)
    assert none.classes is None


def test_a_batch_in_reduced_precision_and_its_timing(tiny_model_dir: Path) -> None:
    from cam_core.analysis.cams import explain_batch
    from cam_core.methods import get_method

    model = load_model(tiny_model_dir, "cpu")
    x = torch.randn(3, 3, 48, 48, generator=torch.Generator().manual_seed(6))
    exact = explain_batch(model, x, (get_method("cam"),), precision="fp32")
    for precision in ("bf16", "auto"):
        batch = explain_batch(model, x, (get_method("cam"),), precision=precision)
        torch.testing.assert_close(batch.logits, exact.logits, atol=0.1, rtol=0.05)
    assert 0.0 <= exact.seconds["cam"] < 600.0  # a duration, not a clock reading


def test_three_classes_budget_only_for_the_methods_that_need_one(tmp_path: Path) -> None:
    from cam_core.analysis.cams import explain_batch
    from cam_core.methods import get_method
    from tests.conftest import make_model

    make_model(tmp_path, classes=("a", "b", "c"))
    model = load_model(tmp_path, "cpu")
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(7))
    only_cam = explain_batch(model, x, (get_method("cam"),), per_image=1)
    assert only_cam.classes is None and only_cam.maps["cam"].shape[1] == 3
    both = explain_batch(model, x, (get_method("cam"), get_method("gradcam")), per_image=1)
    assert both.classes is not None and both.classes.shape == (2, 1)


def test_file_runs_add_up_batch_times_and_describe_empty_runs(
    tiny_model_dir: Path, tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cam_core.analysis import cams
    from cam_core.evaluation.duplicates import SIGNATURE_SCALES

    real = cams.explain_batch

    def timed(*args: object, **kwargs: object) -> cams.BatchExplanation:
        from dataclasses import replace

        return replace(real(*args, **kwargs), seconds={"gradcam": 0.5})  # type: ignore[arg-type]

    monkeypatch.setattr(cams, "explain_batch", timed)
    model = load_model(tiny_model_dir, "cpu")
    paths = [s.path for s in tiny_dataset.samples[:7]]
    seen: list[tuple[str, float]] = []
    run = _in_threes(
        model,
        paths,
        progress=lambda m, f: seen.append((m, f)),
    )
    assert run.seconds == {"gradcam": 1.5}  # three batches
    assert seen[-1] == ("class maps (7/7 images)", 1.0)
    monkeypatch.undo()
    one: list[float] = []
    explain_files(model, paths[:1], ("cam",), num_workers=0, progress=lambda m, f: one.append(f))
    assert one == [1.0]
    none = explain_files(model, [], ("cam",), num_workers=0)
    assert none.logits.dtype == np.float32 and none.features.dtype == np.float16
    assert none.signatures.shape == (0, len(SIGNATURE_SCALES), 1)
    assert none.signatures.dtype == np.float16 and none.properties.dtype == np.float32
    assert none.maps["cam"].shape == (0, 2, 1, 1) and none.maps["cam"].dtype == np.float16
    assert none.seconds == {"cam": 0.0}


def test_loaders_decode_in_workers_only_when_there_is_more_than_one_batch(
    tiny_model_dir: Path, tiny_dataset: Dataset
) -> None:
    from cam_core.analysis.cams import load_images

    model = load_model(tiny_model_dir, "cpu")
    paths = [s.path for s in tiny_dataset.samples[:5]]
    assert load_images(model, paths, batch_size=2).num_workers == min(4, torch.get_num_threads())
    assert load_images(model, paths, batch_size=5).num_workers == 0
    assert load_images(model, paths, batch_size=2, num_workers=1).num_workers == 1
    loader = load_images(model, paths, batch_size=4)
    assert loader.batch_size == 4 and not loader.pin_memory
    assert load_images(model, paths).batch_size == 64


def test_the_slot_classes_of_each_method() -> None:
    from cam_core.analysis.cams import ExplainedFiles

    slots = np.array([[1, 0], [2, 1]])
    run = ExplainedFiles(
        np.zeros((2, 3), np.float32),
        np.zeros((2, 4), np.float16),
        np.zeros((2, 5, 1)),
        np.zeros((2, 4), np.float32),
        {"cam": np.zeros((2, 3, 2, 2)), "gradcam": np.zeros((2, 2, 2, 2))},
        {},
        slots,
    )
    assert run.classes_of("cam") is None
    np.testing.assert_array_equal(run.classes_of("gradcam"), slots)


def test_a_transformer_s_features_are_its_class_token(tmp_path: Path) -> None:
    """The pooled features of a ViT analysis are what its head reads: the class token after
    the encoder, not the mean over tokens."""
    from cam_core.methods import get_method
    from cam_core.methods.tokens import feature_vector, token_layout
    from cam_core.modelling.architectures import to_classifier
    from cam_core.modelling.model_files import LoadedModel, ModelCard
    from tests.test_tokens import small_vit

    net, _ = to_classifier(small_vit(seed=6), check_size=64)
    net.eval()
    card = ModelCard(arch="vit", n_features=32, classes=("a", "b", "c"), image_size=64)
    model = LoadedModel(card, net, torch.device("cpu"), tmp_path)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    batch = explain_batch(model, images, [get_method("gradcam")], "body")
    with torch.no_grad():
        tokens = net.body(images)
    layout = token_layout(net)
    assert layout is not None and layout.prefix == 1
    np.testing.assert_allclose(batch.features, tokens[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(batch.features, feature_vector(tokens, layout).numpy(), atol=1e-5)
