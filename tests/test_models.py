from __future__ import annotations

import pytest
import torch
from torch import nn

from cam_core.modelling.models import CamNet, build_body, cam_head, num_features


@pytest.mark.parametrize(
    ("arch", "nf"), [("democnn2", 128), ("democnn", 128), ("resnet18", 512), ("resnet50", 2048)]
)
def test_num_features_is_read_from_the_body(arch: str, nf: int) -> None:
    assert num_features(build_body(arch)) == nf


def test_head_is_pool_flatten_bias_free_linear() -> None:
    head = cam_head(64, 3)
    assert isinstance(head[0], nn.AdaptiveAvgPool2d) and head[0].output_size == 1
    assert isinstance(head[1], nn.Flatten)
    assert isinstance(head[2], nn.Linear)
    assert head[2].bias is None
    assert tuple(head[2].weight.shape) == (3, 64)


def test_head_swap_keeps_the_body_and_reads_nf() -> None:
    body = build_body("resnet18")
    net = CamNet(body, 2)
    assert net.body is body
    assert tuple(net.weight.shape) == (2, 512)


def test_unknown_arch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        build_body("vgg")


@pytest.mark.parametrize("n_classes", [2, 5])
def test_maps_of_every_class_average_to_the_logits(n_classes: int) -> None:
    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), n_classes).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        logits, maps = net.forward_with_maps(x)
        plain = net(x)
    assert maps.shape == (3, n_classes, 8, 8)
    assert torch.allclose(maps.mean(dim=(2, 3)), logits, atol=1e-5)
    assert torch.allclose(plain, logits, atol=1e-5)
    # Each class map is the weighted sum of features with that class's weights.
    features = net.body(x)
    expected = (features * net.weight[1].view(1, -1, 1, 1)).sum(1)
    assert torch.allclose(maps[:, 1], expected, atol=1e-4)
