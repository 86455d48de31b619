"""Architectures: a feature body plus the CAM head of Zhou et al. (2016).

The CAM head is ``AdaptiveAvgPool2d(1) → Flatten → Linear(nf, n_classes, bias=False)``. Because
pooling and the bias-free linear layer commute, the class maps
``einsum('ocij,kc->okij', body(x), W)`` average exactly to the logits. Imported models whose head
is global average pooling and one linear layer with a bias (torchvision ResNets) are CamNets too:
there, map mean + bias = logit. Any other classifier is a :class:`SplitNet`: a body and a head
of any kind, explained by the gradient methods only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models as tv_models

__all__ = [
    "ARCHITECTURES",
    "DEMO_CNNS",
    "CamNet",
    "Classifier",
    "SplitNet",
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
DEMO_CNNS = {"democnn2": 2, "democnn": 1}
"""The demo CNN's architecture names and their :func:`demo_cnn_body` versions."""
ARCHITECTURES = (*_TORCHVISION, *DEMO_CNNS)


def _conv_block(c_in: int, c_out: int, stride: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def demo_cnn_body(version: int = 2) -> nn.Sequential:
    """The demo's small all-convolutional body: stride 8, a 12×12 map at 96 px.

    Version 2 (``democnn2``, the demo's) ends in two 1×1 convolutions, so each cell sees a
    27×27 px window: about one face of the demo's cartoons, ears included, less than a face with
    its surroundings. Version 1 (``democnn``) ended in two more 3×3 convolutions, 59 px, wider
    than any face; its class evidence spread over the head and beyond, and its maps peaked off
    the telling parts (CAM pointing game 0.74-0.85 over three seeds; version 2's figures are in
    ``benchmarks/QUALITY.md``). Version 1 stays so that models trained with it still load.

    Raises:
        ValueError: a version other than 1 or 2.
    """
    if version not in (1, 2):
        raise ValueError(f"demo CNN version {version} does not exist; use 1 or 2")
    late = 3 if version == 1 else 1
    return nn.Sequential(
        _conv_block(3, 16, 2),
        _conv_block(16, 16, 1),
        _conv_block(16, 32, 2),
        _conv_block(32, 32, 1),
        _conv_block(32, 64, 2),
        _conv_block(64, 64, 1, late),
        _conv_block(64, 128, 1, late),
    )


def build_body(arch: str, pretrained: bool = False) -> nn.Sequential:
    """The convolutional body of ``arch``: everything before global pooling.

    For torchvision ResNets this is fastai's ``create_body`` cut (all children but the pool and
    the fc layer), so state dicts from fastai training load here without fastai.

    Raises:
        ValueError: unknown architecture name.
    """
    if arch in DEMO_CNNS:
        return demo_cnn_body(DEMO_CNNS[arch])
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


def cam_head(nf: int, n_classes: int, bias: bool = False) -> nn.Sequential:
    """``AdaptiveAvgPool2d(1) → Flatten → Linear(nf, n_classes, bias)``."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nf, n_classes, bias=bias))


class CamNet(nn.Module):
    """A body with the CAM head; ``forward`` gives logits, :meth:`forward_with_maps` adds maps.

    Args:
        body: feature extractor ``(N, 3, S, S) → (N, nf, h, w)``.
        n_classes: outputs.
        nf: the body's channels (read by a dummy pass when not given).
        bias: the linear layer has a bias (imported models); a map's mean plus the class's bias
            is then its logit. Models trained here have none.
    """

    def __init__(
        self, body: nn.Module, n_classes: int, nf: int | None = None, bias: bool = False
    ) -> None:
        super().__init__()
        self.body = body
        self.head = cam_head(nf if nf is not None else num_features(body), n_classes, bias)

    @property
    def weight(self) -> torch.Tensor:
        """The class weights, shape ``(n_classes, nf)``."""
        linear = self.head[2]
        assert isinstance(linear, nn.Linear)
        return linear.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """The class biases ``(n_classes,)``, or None (every model trained here)."""
        linear = self.head[2]
        assert isinstance(linear, nn.Linear)
        return linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` for images ``(N, 3, H, W)``."""
        return self.head(self.body(x))

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the map of every class from one forward pass.

        Args:
            x: images ``(N, 3, H, W)``.

        Returns:
            ``(logits, maps)``: ``(N, K)`` and ``(N, K, h, w)`` at feature resolution, where
            ``maps.mean((2, 3)) + bias == logits`` (no bias: the mean is the logit).
        """
        return self.maps_from_features(self.body(x))

    def maps_from_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and every class map from the body's output ``(N, nf, h, w)`` (the rest of
        :meth:`forward_with_maps`, for callers that keep the features too)."""
        maps = torch.einsum("ocij,kc->okij", features, self.weight.to(features.dtype))
        logits = maps.mean(dim=(2, 3))
        if self.bias is not None:
            logits = logits + self.bias.to(logits.dtype)
        return logits, maps


class SplitNet(nn.Module):
    """Any classifier cut into a feature ``body`` and a ``head`` (pooling and classifier).

    ``forward`` is ``head(body(x))``. The gradient methods read ``body`` (the layer named
    ``body``), like they do on a :class:`CamNet`; exact CAM does not apply.

    Args:
        body: feature extractor.
        head: everything after it.
        head_kind: the head in words, for "why is CAM not offered" messages.
    """

    def __init__(self, body: nn.Module, head: nn.Module, head_kind: str) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.head_kind = head_kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` for images ``(N, 3, H, W)``."""
        return self.head(self.body(x))


Classifier = CamNet | SplitNet
"""What a model folder loads into."""


def default_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when available, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
