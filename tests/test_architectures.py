"""Cutting classifiers trained elsewhere into body and head, and refusing cuts that change them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import models as tv_models

from cam_core.errors import ImportModelError
from cam_core.modelling.architectures import (
    body_channels,
    build_classifier,
    cam_reason,
    known_architectures,
    to_classifier,
)
from cam_core.modelling.models import CamNet, SplitNet


def test_exact_cam_applies_to_pooling_flatten_and_one_linear_layer_only() -> None:
    gap, flat = nn.AdaptiveAvgPool2d(1), nn.Flatten()
    assert cam_reason([gap, flat, nn.Linear(8, 2)]) is None
    assert cam_reason([nn.AdaptiveAvgPool2d((1, 1)), flat, nn.Linear(8, 2)]) is None
    nested = [
        nn.Sequential(gap, nn.Dropout(0.2)),
        nn.Sequential(flat, nn.Identity()),
        nn.Linear(8, 2),
    ]
    assert cam_reason(nested) is None
    reason = cam_reason([nn.AdaptiveAvgPool2d(2), flat, nn.Linear(32, 2)])
    assert reason is not None and reason.endswith("AdaptiveAvgPool2d → Flatten → Linear")
    two = cam_reason([gap, flat, nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)])
    assert two is not None and "Linear → ReLU → Linear" in two
    assert cam_reason([gap, flat, nn.Conv2d(8, 2, 1)]) is not None
    assert cam_reason([nn.AdaptiveMaxPool2d(1), flat, nn.Linear(8, 2)]) is not None
    assert cam_reason([flat, gap, nn.Linear(8, 2)]) is not None


def test_known_layouts_are_cut_and_checked() -> None:
    torch.manual_seed(0)
    resnet = tv_models.resnet18(weights=None, num_classes=3)
    net, reason = to_classifier(resnet, check_size=64)
    assert reason is None and isinstance(net, CamNet) and not net.training
    assert net.head[2] is resnet.fc and body_channels(net, 64) == 512
    mobile = tv_models.mobilenet_v3_small(weights=None, num_classes=2)
    split, reason = to_classifier(mobile, check_size=64)
    assert isinstance(split, SplitNet) and reason is not None and "Hardswish" in reason
    assert body_channels(split, 64) == 576
    v2 = tv_models.mobilenet_v2(weights=None, num_classes=2)
    net, reason = to_classifier(v2, check_size=64)
    assert reason is None and body_channels(net, 64) == 1280
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), v2.eval()(x))


def test_a_cut_that_changes_the_output_is_refused() -> None:
    class Doubled(nn.Module):
        """An avgpool/fc layout whose forward does more than its children."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * self.fc(torch.flatten(self.avgpool(self.conv(x)), 1))

    with pytest.raises(ImportModelError, match="cutting Doubled into body and head changes"):
        to_classifier(Doubled(), check_size=32)
    _net, reason = to_classifier(Doubled())  # unchecked: the cut is taken as it is
    assert reason is None
    fixed = nn.Sequential()  # an avgpool/fc layout that only runs at one size
    fixed.add_module("conv", nn.Conv2d(3, 4, 3))
    fixed.add_module("avgpool", nn.AvgPool2d(6))
    fixed.add_module("fc", nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    to_classifier(fixed, check_size=8)
    with pytest.raises(ImportModelError, match="does not run at 16 px"):
        to_classifier(fixed, check_size=16)
    squeeze = tv_models.squeezenet1_1(weights=None, num_classes=2)
    with pytest.raises(ImportModelError, match="cannot find where the feature maps of SqueezeNet"):
        to_classifier(squeeze)


def test_bodies_without_feature_maps_are_refused() -> None:
    body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    net = SplitNet(body, nn.Linear(5, 2), "an MLP")
    with pytest.raises(ImportModelError, match=r"shape \(1, 5\), not \(N, C, h, w\)"):
        body_channels(net, 8)


def test_building_by_name() -> None:
    assert "resnet18" in known_architectures() and known_architectures() == sorted(
        known_architectures()
    )
    model = build_classifier("resnet18", 4)
    assert isinstance(model, tv_models.ResNet) and model.fc.out_features == 4
    with pytest.raises(ImportModelError, match="at least one class"):
        build_classifier("resnet18", 0)
    assert isinstance(build_classifier("resnet18", 1), tv_models.ResNet)
    with pytest.raises(ImportModelError, match="unknown architecture 'resnet19'.*resnet101"):
        build_classifier("resnet19", 2)
    with pytest.raises(ImportModelError, match="fastai works with torchvision"):
        build_classifier("timm:resnet18", 2, fastai=True)
    with pytest.raises(ImportModelError, match="timm has no model 'no_such_net'"):
        build_classifier("timm:no_such_net", 2)
    fastai = build_classifier("resnet18", 3, fastai=True)
    net, reason = to_classifier(fastai, fastai=True, check_size=64)
    assert isinstance(net, SplitNet) and reason is not None  # fastai's head: two linear layers


def test_only_classification_models_are_known() -> None:
    from cam_core.modelling.architectures import known_architectures

    known = known_architectures()
    assert "resnet50" in known and "vit_b_16" in known and known == sorted(known)
    assert "fasterrcnn_resnet50_fpn" not in known and "deeplabv3_resnet50" not in known


def test_a_timm_model_that_cannot_be_built_for_the_size_says_why_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import timm

    def refuse(error: Exception):  # type: ignore[no-untyped-def]
        def create_model(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise error

        return create_model

    for error, shown in (
        (
            ValueError("patch size 16 does not divide 50\nsee the docs"),
            "patch size 16 does not divide 50",
        ),
        (AssertionError(), "AssertionError"),
    ):
        monkeypatch.setattr(timm, "create_model", refuse(error))
        with pytest.raises(ImportModelError) as caught:
            build_classifier("timm:vit_tiny_patch16_224", 2, image_size=50)
        assert str(caught.value) == (
            f"cannot build timm:vit_tiny_patch16_224 for 50-px images ({shown})"
        )


def test_an_unknown_name_suggests_up_to_six_names_with_its_first_four_letters() -> None:
    with pytest.raises(ImportModelError) as caught:
        build_classifier("resnet1000", 2)
    # resnet101 … resnext101_32x8d are the first six of eight names starting "resn"
    assert "(resnet101, resnet152, resnet18, resnet34, resnet50, resnext101_32x8d)" in str(
        caught.value
    )
    with pytest.raises(ImportModelError, match=r"\(vit_b_16, vit_b_32, vit_h_14"):
        build_classifier("vit_x_99", 2)


def test_a_timm_swin_s_channels_are_read_channels_last() -> None:
    import timm

    from cam_core.modelling.architectures import layer_grid

    model = timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, num_classes=2, img_size=64, window_size=2
    )
    net, reason = to_classifier(model, check_size=64)
    assert reason is not None  # a SplitNet: its channels come from the body's output
    assert body_channels(net, 64) == 768 and layer_grid(net, "body", 64) == (768, 2, 2)


def test_a_layer_that_never_runs_is_refused_in_one_line() -> None:
    from cam_core.modelling.architectures import layer_grid
    from cam_core.modelling.models import build_body

    net = CamNet(build_body("democnn2"), 2)
    net.spare = nn.Conv2d(3, 3, 1)  # registered, never called
    with pytest.raises(ImportModelError, match="layer 'spare' gives no tensor"):
        layer_grid(net, "spare", 32)


def test_the_cut_follows_the_layout_not_a_name_or_one_method() -> None:
    """A model is cut by what it holds: a name alone (a class called ``VisionTransformer`` or
    ``SwinTransformer``), an ``encoder`` child or a ``forward_features`` method alone does not
    make it a transformer or a timm model."""

    def pooled(name: str, body: str, extra: dict[str, object]) -> nn.Module:
        def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
            features = getattr(self, body)(x)
            return self.fc(torch.flatten(self.avgpool(features), 1))

        cls = type(name, (nn.Module,), {"forward": forward, **extra})
        model = cls()
        model.add_module(body, nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()))
        model.add_module("avgpool", nn.AdaptiveAvgPool2d(1))
        model.add_module("fc", nn.Linear(4, 2))
        return model

    def own_features(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)

    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    for model in (
        pooled("EncoderNet", "encoder", {}),  # an encoder child, not a transformer
        pooled("VisionTransformer", "stem", {}),  # the name without the encoder
        pooled("SwinTransformer", "stem", {}),  # the name without features/norm/permute
        pooled("OwnFeatures", "stem", {"forward_features": own_features}),  # no forward_head
    ):
        net, reason = to_classifier(model, check_size=16)
        assert reason is None and isinstance(net, CamNet), type(model).__name__
        assert net.head[2] is model.fc
        with torch.no_grad():
            torch.testing.assert_close(net(x), model.eval()(x))


def test_a_convnext_keeps_its_own_classifier_and_a_bare_pooling_model_is_cut_before_it() -> None:
    """torchvision's ConvNeXt normalises before it flattens (a SplitNet that computes what the
    model does); a model that is only pooling and a linear layer has an empty body: its maps
    are the image's own channels."""
    torch.manual_seed(0)
    convnext = tv_models.convnext_tiny(weights=None, num_classes=2)
    split, reason = to_classifier(convnext, check_size=32)
    assert isinstance(split, SplitNet) and reason is not None and "LayerNorm2d" in reason
    assert split.head[1] is convnext.classifier and body_channels(split, 32) == 768
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(split(x), convnext.eval()(x))

    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.avgpool(x), 1))

    bare = Pooled()
    net, reason = to_classifier(bare, check_size=16)
    assert reason is None and isinstance(net, CamNet) and body_channels(net, 16) == 3
    with torch.no_grad():
        torch.testing.assert_close(net(x), bare.eval()(x))


def test_the_cut_is_checked_against_the_first_output_within_a_tolerance_relative_to_it() -> None:
    """A cut may differ from the model by rounding only: 1e-4 of (the largest logit + 1). A
    model that also returns an auxiliary output is compared on its first one."""

    class Offset(nn.Module):
        """An avgpool/fc layout whose forward adds ``offset`` (and may return a second output)."""

        def __init__(self, bias: float, offset: float, aux: bool = False) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4, 2)
            nn.init.zeros_(self.fc.weight)
            nn.init.constant_(self.fc.bias, bias)
            self.offset, self.aux = offset, aux

        def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
            logits = self.fc(torch.flatten(self.avgpool(self.conv(x)), 1)) + self.offset
            return (logits, torch.full((len(x), 3), 50.0)) if self.aux else logits

    with pytest.raises(ImportModelError, match="changes its output"):
        to_classifier(Offset(0.0, 1.5e-4), check_size=16)  # 1.5e-4 > 1e-4 × (0.00015 + 1)
    to_classifier(Offset(9.0, 5e-4), check_size=16)  # 5e-4 < 1e-4 × (9.0005 + 1)
    with pytest.raises(ImportModelError, match="changes its output"):
        to_classifier(Offset(9.0, 2e-3), check_size=16)
    net, reason = to_classifier(Offset(1.0, 0.0, aux=True), check_size=16)
    assert reason is None and isinstance(net, CamNet)
    with pytest.raises(ImportModelError, match="changes its output"):
        to_classifier(Offset(1.0, 0.5, aux=True), check_size=16)


def test_a_fastai_layout_whose_head_is_one_module_is_cut_before_it() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    head = Head()
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), head)
    split, reason = to_classifier(model, fastai=True, check_size=16)
    assert isinstance(split, SplitNet) and reason is not None and reason.endswith("head is Head")
    assert split.head[0] is head
