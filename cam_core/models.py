"""Architectures: a feature body plus the CAM head of Zhou et al. (2016).

The CAM head is ``AdaptiveAvgPool2d(1) → Flatten → Linear(nf, n_classes, bias=False)``. Because
pooling and the bias-free linear layer commute, the class maps
``einsum('ocij,kc->okij', body(x), W)`` average exactly to the logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models as tv_models

__all__ = [
    "ARCHITECTURES",
    "CamNet",
    "build_body",
    "cam_head",
    "default_device",
    "demo_cnn_body",
    "num_features",
]

_TORCHVISION: dict[str, Callable[..., nn.Module]] = {
    "resnet18": tv_models.resnet18,
    "resnet34": tv_models.resnet34,
    "resnet50": tv_models.resnet50,
}
ARCHITECTURES = (*_TORCHVISION, "democnn")


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def demo_cnn_body() -> nn.Sequential:
    """A small all-convolutional body with stride 8 (a 12×12 map at 96 px), for the demo."""
    return nn.Sequential(
        _conv_block(3, 16, 2),
        _conv_block(16, 16, 1),
        _conv_block(16, 32, 2),
        _conv_block(32, 32, 1),
        _conv_block(32, 64, 2),
        _conv_block(64, 64, 1),
        _conv_block(64, 128, 1),
    )


def build_body(arch: str, pretrained: bool = False) -> nn.Sequential:
    """The convolutional body of ``arch``: everything before global pooling.

    For torchvision ResNets this is fastai's ``create_body`` cut (all children but the pool and
    the fc layer), so state dicts from fastai training load here without fastai.

    Raises:
        ValueError: unknown architecture name.
    """
    if arch == "democnn":
        return demo_cnn_body()
    if arch not in _TORCHVISION:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    model = _TORCHVISION[arch](weights="DEFAULT" if pretrained else None)
    return nn.Sequential(*list(model.children())[:-2])


def num_features(body: nn.Module) -> int:
    """Channels of the body's output, read by a dummy forward pass (never hard-coded)."""
    was_training = body.training
    body.eval()
    try:
        param = next(body.parameters())
        with torch.no_grad():
            out = body(torch.zeros(1, 3, 64, 64, dtype=param.dtype, device=param.device))
    finally:
        body.train(was_training)
    return int(out.shape[1])


def cam_head(nf: int, n_classes: int) -> nn.Sequential:
    """``AdaptiveAvgPool2d(1) → Flatten → Linear(nf, n_classes, bias=False)``."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nf, n_classes, bias=False)
    )


class CamNet(nn.Module):
    """A body with the CAM head; ``forward`` gives logits, :meth:`forward_with_maps` adds maps."""

    def __init__(self, body: nn.Module, n_classes: int, nf: int | None = None) -> None:
        super().__init__()
        self.body = body
        self.head = cam_head(nf if nf is not None else num_features(body), n_classes)

    @property
    def weight(self) -> torch.Tensor:
        """The class weights, shape ``(n_classes, nf)``."""
        linear = self.head[2]
        assert isinstance(linear, nn.Linear)
        return linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` for images ``(N, 3, H, W)``."""
        return self.head(self.body(x))

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the map of every class from one forward pass.

        Args:
            x: images ``(N, 3, H, W)``.

        Returns:
            ``(logits, maps)``: ``(N, K)`` and ``(N, K, h, w)`` at feature resolution, where
            ``maps.mean((2, 3)) == logits``.
        """
        features = self.body(x)
        maps = torch.einsum("ocij,kc->okij", features, self.weight.to(features.dtype))
        return maps.mean(dim=(2, 3)), maps


def default_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when available, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
