"""Transformers' token layouts, read from the model: grids, prefix tokens, placement, layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import models as tv_models
from torchvision.models.vision_transformer import VisionTransformer

from cam_core.errors import MethodError
from cam_core.methods import get_method
from cam_core.methods.placement import PATCHES, RECEPTIVE_FIELD, cell_centre, upsample_maps
from cam_core.methods.tokens import (
    as_feature_maps,
    candidate_layers,
    feature_vector,
    placement_of,
    token_layout,
)
from cam_core.modelling.architectures import to_classifier
from cam_core.modelling.models import CamNet, build_body


def small_vit(classes: int = 3, layers: int = 2, seed: int = 0) -> nn.Module:
    """torchvision's ViT at 64 px: 16-px patches, a 4×4 grid, 2 blocks, width 32."""
    torch.manual_seed(seed)
    model = VisionTransformer(
        image_size=64,
        patch_size=16,
        num_layers=layers,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
        num_classes=classes,
    ).eval()
    with torch.no_grad():  # torchvision starts the head at zero: every class score would be 0
        model.heads.head.weight.normal_(0, 0.5)
        model.class_token.normal_(0, 1)
    return model


def test_a_torchvision_vit_is_read_from_the_model() -> None:
    net, reason = to_classifier(small_vit(), check_size=64)
    layout = token_layout(net)
    assert layout is not None and layout.family == "vit"
    assert (layout.patch, layout.prefix) == (16, 1)
    assert layout.blocks == (
        "body.model.encoder.layers.encoder_layer_0",
        "body.model.encoder.layers.encoder_layer_1",
    )
    assert layout.default_layer == "body.model.encoder.layers.encoder_layer_1.ln_1"
    assert layout.rollout and placement_of(net) == PATCHES
    assert reason is not None and "class token" in reason
    net.get_submodule(layout.default_layer)  # a real layer


def test_timm_prefix_tokens_distillation_and_registers() -> None:
    timm = pytest.importorskip("timm")
    deit = timm.create_model(
        "deit_tiny_distilled_patch16_224", pretrained=False, num_classes=2, img_size=64
    )
    registers = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=2, img_size=64, reg_tokens=4
    )
    for model, prefix in ((deit, 2), (registers, 5)):
        net, _ = to_classifier(model.eval(), check_size=64)
        layout = token_layout(net)
        assert layout is not None and (layout.patch, layout.prefix) == (16, prefix)
        assert layout.default_layer == "body.model.blocks.11.norm1"
        tokens = net.body(torch.zeros(1, 3, 64, 64))
        assert tokens.shape == (1, prefix + 16, 192)
        assert as_feature_maps(tokens, layout).shape == (1, 192, 4, 4)


def test_swin_is_cut_into_feature_maps_with_exact_cam() -> None:
    model = tv_models.swin_t(weights=None, num_classes=2).eval()
    net, reason = to_classifier(model, check_size=64)
    assert reason is None and isinstance(net, CamNet)  # GAP + one linear layer: exact CAM
    layout = token_layout(net)
    assert layout is not None and layout.family == "swin"
    assert (layout.patch, layout.prefix, layout.blocks) == (4, 0, ("body.0.7.0", "body.0.7.1"))
    assert layout.default_layer == "body" and not layout.rollout
    x = torch.randn(2, 3, 64, 64)
    stage = {}
    handle = net.get_submodule("body.0.7.1").register_forward_hook(
        lambda _m, _i, out: stage.setdefault("out", out)
    )
    with torch.no_grad():
        body = net.body(x)
    handle.remove()
    assert stage["out"].shape == (2, 2, 2, 768)  # channels last inside the stages
    assert body.shape == (2, 768, 2, 2)  # channels first after the cut's permutation
    torch.testing.assert_close(as_feature_maps(body, layout), body)
    torch.testing.assert_close(
        as_feature_maps(stage["out"], layout), stage["out"].permute(0, 3, 1, 2)
    )
    assert candidate_layers(net, 64) == ["body", "body.0.7.0"]
    # Inside Swin, a map whose sides equal its channels is taken as channels last (the only
    # channels-first output is the body's, whose channels outnumber its cells).
    cube = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4, 4)
    torch.testing.assert_close(as_feature_maps(cube, layout), cube.permute(0, 3, 1, 2))


def test_tokens_land_on_their_patch_of_the_grid() -> None:
    net, _ = to_classifier(small_vit(), check_size=64)
    layout = token_layout(net)
    # Token 1 + r*4 + c holds the value 100*r + c in every channel; the class token holds -1.
    values = torch.tensor([-1.0] + [100.0 * r + c for r in range(4) for c in range(4)])
    tokens = values[None, :, None].expand(2, 17, 3)
    maps = as_feature_maps(tokens, layout)
    assert maps.shape == (2, 3, 4, 4)
    expected = torch.tensor([[100.0 * r + c for c in range(4)] for r in range(4)])
    torch.testing.assert_close(maps[1, 2], expected)
    with pytest.raises(
        MethodError, match="18 tokens; without the 1 prefix token\\(s\\), 17 do not"
    ):
        as_feature_maps(torch.zeros(1, 18, 3), layout)
    with pytest.raises(MethodError, match=r"\(1, 3\): neither feature maps"):
        as_feature_maps(torch.zeros(1, 3), layout)
    with pytest.raises(MethodError, match="tokens of a known transformer"):
        as_feature_maps(torch.zeros(1, 17, 3), None)  # a CNN has no token layout


def test_a_cnn_has_no_layout_and_keeps_its_maps() -> None:
    net = CamNet(build_body("democnn2"), 2)
    assert token_layout(net) is None and placement_of(net) == RECEPTIVE_FIELD
    maps = torch.randn(2, 8, 5, 5)
    assert as_feature_maps(maps, None) is maps


def test_feature_vectors_follow_what_the_head_reads() -> None:
    net, _ = to_classifier(small_vit(), check_size=64)
    layout = token_layout(net)
    tokens = torch.randn(2, 17, 32)
    torch.testing.assert_close(feature_vector(tokens, layout), tokens[:, 0])  # the class token
    torch.testing.assert_close(feature_vector(tokens, None), tokens.mean(dim=1))
    maps = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(feature_vector(maps, None), maps.mean(dim=(2, 3)))
    flat = torch.randn(2, 5)
    torch.testing.assert_close(feature_vector(flat, None), flat)
    distilled = type(layout)(layout.family, layout.patch, 2, layout.blocks, layout.norm)
    tokens = torch.randn(2, 18, 32)  # class, distillation, 16 patches: the class token counts
    torch.testing.assert_close(feature_vector(tokens, distilled), tokens[:, 0])


def test_gradcam_on_a_vit_equals_a_hand_computation() -> None:
    """Grad-CAM at the last block's first norm: the patch tokens' activations weighted by the
    mean gradient of the class score over the grid, ReLU, min-max scaled."""
    net, _ = to_classifier(small_vit(seed=1), check_size=64)
    layout = token_layout(net)
    layer = layout.default_layer
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    target = net.get_submodule(layer)
    kept: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        kept["out"] = output

    handle = target.register_forward_hook(keep)
    logits = net(x)
    handle.remove()
    classes = torch.tensor([2, 0])
    logits.gather(1, classes[:, None]).sum().backward()
    acts = kept["out"][:, 1:].detach().reshape(2, 4, 4, 32).permute(0, 3, 1, 2)
    grads = kept["out"].grad[:, 1:].reshape(2, 4, 4, 32).permute(0, 3, 1, 2)
    cam = torch.relu((grads.mean(dim=(2, 3))[:, :, None, None] * acts).sum(dim=1))
    low = cam.flatten(1).min(dim=1).values[:, None, None]
    high = cam.flatten(1).max(dim=1).values[:, None, None]
    expected = ((cam - low) / (high - low + 1e-7)).numpy()
    got = get_method("gradcam").explain(net, x, layer, classes[:, None]).numpy()[:, 0]
    assert got.shape == (2, 4, 4) and (got.max(axis=(1, 2)) == pytest.approx(1.0, abs=1e-4))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    other = get_method("gradcam").explain(net, x, layer, torch.tensor([[1], [1]])).numpy()[:, 0]
    assert not np.allclose(other, got, atol=1e-3)  # the class matters


def test_patches_are_placed_on_their_centres() -> None:
    # A 2×2 grid over 8 px: receptive fields centre cell i on pixel 4i, patches on 4i + 1.5.
    assert cell_centre(1, 2, 8, RECEPTIVE_FIELD) == 4.0
    assert cell_centre(1, 2, 8, PATCHES) == 5.5
    ramp = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    cnn = upsample_maps(ramp, (8, 8), RECEPTIVE_FIELD)[0]
    vit = upsample_maps(ramp, (8, 8), PATCHES)[0]
    np.testing.assert_allclose(cnn, [0, 0.25, 0.5, 0.75, 1, 1, 1, 1])
    np.testing.assert_allclose(vit, [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1])
    # Symmetric about the image centre, like the patches themselves.
    np.testing.assert_allclose(vit, 1 - vit[::-1])
    with pytest.raises(ValueError, match="unknown placement 'middle'"):
        upsample_maps(ramp, (8, 8), "middle")


def test_candidate_layers_of_cnns_go_from_coarse_to_fine() -> None:
    demo = CamNet(build_body("democnn2"), 2).eval()
    assert candidate_layers(demo, 96) == ["body", "body.5", "body.3"]
    resnet, _ = to_classifier(tv_models.resnet18(weights=None, num_classes=2), check_size=64)
    # The body's output (layer4's last block), the block before it, layer3's last block.
    assert candidate_layers(resnet, 64) == ["body", "body.7.0", "body.6.1"]
    for layer in candidate_layers(resnet, 64):
        resnet.get_submodule(layer)
    vit, _ = to_classifier(small_vit(layers=4), check_size=64)
    assert candidate_layers(vit, 64) == [
        f"body.model.encoder.layers.encoder_layer_{i}.ln_1" for i in (3, 2, 1)
    ]
    two, _ = to_classifier(small_vit(layers=1), check_size=64)
    assert candidate_layers(two, 64) == ["body.model.encoder.layers.encoder_layer_0.ln_1"]


def test_a_timm_swin_is_read_from_the_model() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, num_classes=2, img_size=64, window_size=2
    ).eval()
    net, reason = to_classifier(model, check_size=64)
    layout = token_layout(net)
    assert layout is not None and layout.family == "swin" and reason is not None
    assert (layout.patch, layout.prefix) == (4, 0)
    assert layout.blocks == ("body.model.layers.3.blocks.0", "body.model.layers.3.blocks.1")
    assert layout.default_layer == "body" and placement_of(net) == PATCHES
    with torch.no_grad():
        features = net.body(torch.zeros(1, 3, 64, 64))
    assert features.shape == (1, 2, 2, 768)  # timm's Swin ends channels last
    torch.testing.assert_close(as_feature_maps(features, layout), features.permute(0, 3, 1, 2))
    torch.testing.assert_close(feature_vector(features, layout), features.mean(dim=(1, 2)))
    assert candidate_layers(net, 64) == ["body", "body.model.layers.3.blocks.0"]
    x = torch.randn(2, 3, 64, 64)
    maps = get_method("gradcam").explain(net, x, "body.model.layers.3.blocks.1")
    assert maps.shape == (2, 2, 2, 2)


def test_candidates_of_a_model_without_a_body_or_stages() -> None:
    assert candidate_layers(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), 32) == ["body"]
    flat = CamNet(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1)), 2).eval()  # one unit only
    assert candidate_layers(flat, 32) == ["body"]
    # Two units at one resolution: the body and the block before it, nothing finer.
    two = CamNet(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)), 2)
    assert candidate_layers(two.eval(), 32) == ["body", "body.0"]
