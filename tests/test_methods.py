"""Every explanation method on a tiny seeded model: shapes, ranges, the Grad-CAM = ReLU(CAM)
invariant, layers, and that nothing leaks (hooks, train mode)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from cam_core.errors import MethodError
from cam_core.methods import METHODS, explain_methods, get_method, parse_methods
from cam_core.modelling.models import CamNet, build_body

CNN_METHODS = [name for name, method in METHODS.items() if not method.class_agnostic]
"""Every method but attention rollout (transformers only: tests/test_rollout.py)."""

SIZE = 48


@pytest.fixture(scope="module")
def net() -> CamNet:
    torch.manual_seed(0)
    # The first demo CNN: its wide receptive fields give most maps of this random model some
    # positive evidence, so the normalisation checks below see maps scaled to 1.
    model = CamNet(build_body("democnn"), 3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def _hooks(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in net.modules())


@pytest.mark.parametrize("name", CNN_METHODS)
def test_every_method_maps_every_class(name: str, net: CamNet, images: torch.Tensor) -> None:
    method = get_method(name)
    net.train()
    maps = method.explain(net, images, "body")
    assert net.training, "the module's train mode is put back"
    net.eval()
    assert maps.shape == (5, 3, 6, 6) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all()
    if method.normalised:
        assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
        # Each map is scaled to a maximum of 1, or all 0 when it has no positive evidence.
        peaks = maps.amax(dim=(2, 3)).numpy()
        assert np.all(np.isclose(peaks, 1.0, atol=1e-4) | (peaks == 0.0))
        assert np.isclose(peaks, 1.0, atol=1e-4).mean() > 0.5
    assert _hooks(net) == 0
    different_classes = not torch.allclose(maps[:, 0], maps[:, 1])
    assert different_classes


def test_gradcam_equals_relu_of_cam_up_to_a_positive_scale(
    net: CamNet, images: torch.Tensor
) -> None:
    """With a bias-free CAM head the gradient of logit k w.r.t. the body's output is W_k / hw
    in every cell, so Grad-CAM on the body is ReLU(CAM_k) / hw, which the library then
    min-max scales per map."""
    signed = copy.deepcopy(net)
    with torch.no_grad():
        # Remove from each class weight its projection on the mean feature vector: logits near
        # 0, so every map has cells of both signs and min-max scaling is a pure scaling.
        mean = signed.body(images).mean(dim=(0, 2, 3))
        weight = signed.weight
        weight.sub_(torch.outer(weight @ mean, mean) / (mean @ mean))
    cam = get_method("cam").explain(signed, images, "body").numpy()
    grad = get_method("gradcam").explain(signed, images, "body").numpy()
    relu = np.maximum(cam, 0)
    peak = relu.max(axis=(2, 3), keepdims=True)
    with_zero = (relu.min(axis=(2, 3)) == 0) & (peak[..., 0, 0] > 0)
    assert with_zero.all()
    assert np.allclose(grad[with_zero], (relu / peak)[with_zero], atol=1e-4)
    low = relu.min(axis=(2, 3), keepdims=True)
    assert np.allclose(grad, (relu - low) / (peak - low + 1e-7), atol=1e-4)


def test_an_earlier_layer_gives_finer_maps(net: CamNet, images: torch.Tensor) -> None:
    coarse = get_method("gradcam").explain(net, images, "body")
    fine = get_method("layercam").explain(net, images, "body.3")
    assert coarse.shape[-2:] == (6, 6) and fine.shape[-2:] == (12, 12)
    with pytest.raises(MethodError, match="no layer 'body.99'"):
        get_method("gradcam").explain(net, images, "body.99")
    with pytest.raises(MethodError, match="exact CAM"):
        get_method("cam").explain(net, images, "body.3")


def test_gradient_methods_work_inside_inference_mode(net: CamNet, images: torch.Tensor) -> None:
    outside = get_method("gradcampp").explain(net, images, "body")
    with torch.inference_mode():
        inside = get_method("gradcampp").explain(net, images, "body")
    assert torch.allclose(outside, inside)


def test_shared_score_cam_matches_the_library(net: CamNet, images: torch.Tensor) -> None:
    ours = get_method("scorecam").explain(net, images[:2], "body").numpy()
    library = ScoreCAM(net, [net.body])
    library.get_target_width_height = lambda _: None  # type: ignore[method-assign]
    try:
        for k in range(3):
            expected = library(images[:2], [ClassifierOutputTarget(k)] * 2)
            assert np.allclose(ours[:, k], expected, atol=1e-4)
    finally:
        library.activations_and_grads.release()


@pytest.mark.parametrize(
    ("name", "library_class"),
    [("gradcam", GradCAM), ("gradcampp", GradCAMPlusPlus), ("layercam", LayerCAM)],
)
@pytest.mark.parametrize("layer", ["body", "body.3"])
def test_shared_gradient_passes_equal_the_library_per_method(
    name: str, library_class: type, layer: str, net: CamNet, images: torch.Tensor
) -> None:
    """One forward and one backward per class for all three methods gives each method's own
    library result (its forward, its backward through the whole model)."""
    ours = get_method(name).explain(net, images, layer).numpy()
    library = library_class(net, [net.get_submodule(layer)])
    library.get_target_width_height = lambda _: None
    try:
        for k in range(3):
            expected = library(images, [ClassifierOutputTarget(k)] * len(images))
            assert np.allclose(ours[:, k], expected, atol=1e-5)
    finally:
        library.activations_and_grads.release()
    assert _hooks(net) == 0


@pytest.mark.parametrize("name", CNN_METHODS)
def test_a_class_budget_gives_the_maps_of_those_classes(
    name: str, net: CamNet, images: torch.Tensor
) -> None:
    """Slot s of image i is the map of class classes[i, s], whatever the order per image."""
    method = get_method(name)
    subset = images[:3]
    every = method.explain(net, subset, "body")
    classes = torch.tensor([[2, 0], [1, 2], [0, 1]])
    budget = method.explain(net, subset, "body", classes)
    assert budget.shape == (3, 2, 6, 6)
    for i in range(3):
        for slot in range(2):
            assert torch.allclose(budget[i, slot], every[i, classes[i, slot]], atol=1e-5)


def test_methods_computed_together_equal_each_alone(net: CamNet, images: torch.Tensor) -> None:
    chosen = [get_method(name) for name in ("cam", "gradcam", "gradcampp", "layercam")]
    classes = torch.tensor([[0, 1]] * len(images))
    together, seconds = explain_methods(chosen, net, images, "body", classes)
    assert list(together) == ["cam", "gradcam", "gradcampp", "layercam"]
    assert together["cam"].shape == (5, 3, 6, 6), "exact CAM keeps every class"
    for method in chosen[1:]:
        assert torch.allclose(together[method.name], method.explain(net, images, "body", classes))
        assert seconds[method.name] > 0
    assert _hooks(net) == 0


def test_score_cam_runs_dead_channels_once_and_still_matches_the_library(
    net: CamNet, images: torch.Tensor
) -> None:
    """Channels that are zero everywhere give black masked images: run once, same result."""
    dead = copy.deepcopy(net)
    last = [m for m in dead.body.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    with torch.no_grad():
        last.weight[::2] = 0.0
        last.bias[::2] = -1.0  # the ReLU after it zeroes every other channel
    calls: list[int] = []
    dead.register_forward_pre_hook(lambda _m, args: calls.append(len(args[0])))
    ours = get_method("scorecam").explain(dead, images[:2], "body").numpy()
    channels = last.weight.shape[0]
    assert sum(calls) < 2 * channels, "the dead half of the channels is not run per image"
    library = ScoreCAM(dead, [dead.body])
    library.get_target_width_height = lambda _: None
    try:
        for k in range(3):
            expected = library(images[:2], [ClassifierOutputTarget(k)] * 2)
            assert np.allclose(ours[:, k], expected, atol=1e-4)
    finally:
        library.activations_and_grads.release()


def test_exact_cam_needs_a_cam_head(images: torch.Tensor) -> None:
    plain = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    assert get_method("cam").applies_to(plain) is not None
    with pytest.raises(MethodError, match="global average pooling"):
        get_method("cam").explain(plain, images, "body")
    assert get_method("gradcam").explain(plain, images, "0").shape == (5, 2, 46, 46)


def test_method_names_are_checked() -> None:
    assert parse_methods(" cam, gradcam ,cam") == ("cam", "gradcam")
    with pytest.raises(MethodError, match="unknown explanation method 'gradcum'"):
        parse_methods("cam,gradcum")
    with pytest.raises(MethodError, match="no explanation method"):
        parse_methods(" , ")
    assert all(METHODS[name].additive == (name == "cam") for name in METHODS)
