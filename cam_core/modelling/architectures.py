"""Classifiers trained elsewhere: build an architecture by name and cut it into body and head.

Names are torchvision classification models (``resnet50``, ``densenet121``, ``efficientnet_b0``,
``mobilenet_v3_small``, ``convnext_tiny``, ``regnet_y_400mf``, …) or ``timm:<name>`` when timm
is installed. With ``fastai=True`` the model is the one fastai's ``vision_learner(arch)`` builds
(fastai's body cut and default head), so a ``learn.save()`` file loads into it.

Vision transformers are cut too: torchvision's ViT into its token encoder (the body: class
token and patch tokens, ``(N, 1 + h*w, D)``) and a head that reads the class token; Swin into
its stages, norm and a channels-first permutation (the body: feature maps) and a head of global
average pooling and one linear layer, so exact CAM applies to Swin. Their token layout comes
from :mod:`cam_core.methods.tokens`. Architectures whose layout depends on the input size are
built for that size (``vit_b_16`` at 64 px has a 4×4 grid and 17 position embeddings).

The cut is checked, not assumed: :func:`to_classifier` runs the original model and the cut one
on the same input and refuses a cut whose logits differ. A head that is global average pooling
followed by one linear layer (dropout aside) becomes a
:class:`~cam_core.modelling.models.CamNet`, which gives exact CAM; any other head a
:class:`~cam_core.modelling.models.SplitNet`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import torch
from torch import nn
from torchvision import models as tv_models

from cam_core.errors import ImportModelError, MethodError, first_line
from cam_core.methods.base import resolve_layer
from cam_core.methods.tokens import as_feature_maps, token_layout
from cam_core.modelling.models import CamNet, Classifier, SplitNet

__all__ = [
    "TIMM_PREFIX",
    "body_channels",
    "build_classifier",
    "cam_reason",
    "known_architectures",
    "layer_grid",
    "to_classifier",
]

TIMM_PREFIX = "timm:"


def known_architectures() -> list[str]:
    """torchvision's classification model names (timm names are not listed: use ``timm:``)."""
    return sorted(tv_models.list_models(module=tv_models))


def build_classifier(
    arch: str, n_classes: int, fastai: bool = False, image_size: int | None = None
) -> nn.Module:
    """A randomly initialised ``arch`` with ``n_classes`` outputs (nothing is downloaded).

    Args:
        arch: torchvision name or ``timm:<name>``.
        n_classes: outputs.
        fastai: fastai's ``vision_learner`` layout.
        image_size: the input side, for architectures built for one size (ViTs); others
            ignore it.

    Raises:
        ImportModelError: unknown name, timm not installed, or a model that cannot be built.
    """
    if n_classes < 1:
        raise ImportModelError("the model needs at least one class")
    if arch.startswith(TIMM_PREFIX):
        if fastai:
            raise ImportModelError("--fastai works with torchvision architectures only")
        return _timm_model(arch.removeprefix(TIMM_PREFIX), n_classes, image_size)
    if arch not in known_architectures():
        close = [name for name in known_architectures() if name.startswith(arch[:4])][:6]
        raise ImportModelError(
            f"unknown architecture {arch!r}; use a torchvision classification model name "
            f"({', '.join(close) or 'resnet50, densenet121, efficientnet_b0, …'}) or timm:<name>"
        )
    if fastai:
        from fastai.vision.learner import create_vision_model

        return create_vision_model(getattr(tv_models, arch), n_classes, pretrained=False)
    sized = {"image_size": image_size} if image_size and arch.startswith("vit_") else {}
    try:
        return tv_models.get_model(arch, weights=None, num_classes=n_classes, **sized)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ImportModelError(f"cannot build {arch} with {n_classes} classes ({exc})") from None


def _timm_model(name: str, n_classes: int, image_size: int | None) -> nn.Module:
    if importlib.util.find_spec("timm") is None:
        raise ImportModelError("timm is not installed; pip install timm to import timm: models")
    import timm

    if not timm.is_model(name):
        raise ImportModelError(f"timm has no model {name!r}; see timm.list_models()")
    model: nn.Module
    if image_size:
        try:  # transformers are built for the input size; CNNs take no such argument
            model = timm.create_model(
                name, pretrained=False, num_classes=n_classes, img_size=image_size
            )
            return model
        except TypeError:
            pass
        except (ValueError, AssertionError, RuntimeError) as exc:
            raise ImportModelError(
                f"cannot build timm:{name} for {image_size}-px images ({first_line(exc)})"
            ) from None
    model = timm.create_model(name, pretrained=False, num_classes=n_classes)
    return model


class _TimmBody(nn.Module):
    """timm's ``forward_features`` as a module (it owns the model's parameters)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)  # type: ignore[operator]


class _TimmHead(nn.Module):
    """timm's ``forward_head``; holds no parameters of its own (they stay in the body)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_model", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = object.__getattribute__(self, "_model")
        return model.forward_head(x)


class _VitBody(nn.Module):
    """torchvision ``VisionTransformer`` up to its head: the class token and the patch tokens
    after the encoder (its final norm included), ``(N, 1 + h*w, D)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        tokens = model._process_input(x)  # type: ignore[operator]
        cls = model.class_token.expand(tokens.shape[0], -1, -1)  # type: ignore[operator]
        return model.encoder(torch.cat([cls, tokens], dim=1))  # type: ignore[operator]


class _VitHead(nn.Module):
    """torchvision ViT's ``heads`` on the class token; its parameters stay in the body."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_model", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = object.__getattribute__(self, "_model")
        return model.heads(x[:, 0])


def _cut(model: nn.Module, fastai: bool) -> tuple[nn.Module, list[nn.Module]]:
    """The body and the head's modules, in order, for the families we know."""
    name = type(model).__name__
    if fastai:
        assert isinstance(model, nn.Sequential)
        body, head = model[0], model[1]
        return body, list(head) if isinstance(head, nn.Sequential) else [head]
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        return _TimmBody(model), [_TimmHead(model)]
    children = dict(model.named_children())
    if name == "VisionTransformer" and "encoder" in children:
        return _VitBody(model), [_VitHead(model)]
    if name == "SwinTransformer" and {"features", "norm", "permute"} <= children.keys():
        body = nn.Sequential(children["features"], children["norm"], children["permute"])
        return body, [children["avgpool"], children["flatten"], children["head"]]
    if name == "DenseNet":
        # torchvision applies ReLU, pooling and flatten functionally after `features`.
        body = nn.Sequential(children["features"], nn.ReLU())
        return body, [nn.AdaptiveAvgPool2d(1), nn.Flatten(), children["classifier"]]
    if name == "MobileNetV2":
        return children["features"], [nn.AdaptiveAvgPool2d(1), nn.Flatten(), children["classifier"]]
    if name == "ConvNeXt":  # its classifier starts with a LayerNorm2d and flattens itself
        return children["features"], [children["avgpool"], children["classifier"]]
    if {"features", "avgpool", "classifier"} <= children.keys():
        return children["features"], [children["avgpool"], nn.Flatten(), children["classifier"]]
    if {"avgpool", "fc"} <= children.keys():
        body = nn.Sequential(
            *(child for key, child in children.items() if key not in ("avgpool", "fc"))
        )
        return body, [children["avgpool"], nn.Flatten(), children["fc"]]
    raise ImportModelError(
        f"cannot find where the feature maps of {name} end (no features/avgpool/fc layout)"
    )


def _flat(modules: list[nn.Module]) -> Iterator[nn.Module]:
    for module in modules:
        if isinstance(module, nn.Sequential):
            yield from _flat(list(module))
        else:
            yield module


def _global_average(module: nn.Module) -> bool:
    return isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1))


def cam_reason(head: list[nn.Module]) -> str | None:
    """``None`` when the head is global average pooling, flatten and one linear layer
    (dropout aside, a no-op in evaluation), else why exact CAM does not apply."""
    parts = [m for m in _flat(head) if not isinstance(m, nn.Dropout | nn.Identity)]
    kinds = [type(m).__name__ for m in parts]
    if (
        len(parts) == 3
        and _global_average(parts[0])
        and isinstance(parts[1], nn.Flatten)
        and isinstance(parts[2], nn.Linear)
    ):
        return None
    if parts and isinstance(parts[0], _TimmHead):
        return "exact CAM is not offered for timm models (their heads are not inspected)"
    if parts and isinstance(parts[0], _VitHead):
        return (
            "exact CAM needs global average pooling of feature maps followed by one linear "
            "layer; a vision transformer's head reads its class token"
        )
    return (
        "exact CAM needs global average pooling followed by one linear layer; this model's "
        f"head is {' → '.join(kinds)}"
    )


def to_classifier(
    model: nn.Module, fastai: bool = False, check_size: int | None = None
) -> tuple[Classifier, str | None]:
    """Cut ``model`` into body and head: a CamNet when exact CAM applies, else a SplitNet.

    Args:
        model: a built classifier (weights already loaded, or to be loaded into the result).
        fastai: the model is fastai's ``vision_learner`` layout.
        check_size: when given, run the original and the cut model on one random image of
            this size and refuse a cut whose logits differ.

    Returns:
        ``(net, reason)``: the cut model in eval mode and why exact CAM does not apply
        (``None`` when it does).

    Raises:
        ImportModelError: an unknown layout, or a cut that changes the model's output.
    """
    model.eval()
    body, head = _cut(model, fastai)
    reason = cam_reason(head)
    net: Classifier
    if reason is None:
        linear = next(m for m in _flat(head) if isinstance(m, nn.Linear))
        net = CamNet(body, linear.out_features, linear.in_features, bias=linear.bias is not None)
        net.head[2] = linear
    else:
        net = SplitNet(body, nn.Sequential(*head), reason)
    net.eval()
    if check_size is not None:
        _check_cut(model, net, check_size)
    return net, reason


def _check_cut(model: nn.Module, net: nn.Module, size: int) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        try:
            expected, got = model(x), net(x)
        except RuntimeError as exc:
            raise ImportModelError(
                f"the model does not run at {size} px ({first_line(exc)})"
            ) from None
    if isinstance(expected, tuple | list):  # e.g. auxiliary outputs
        expected = expected[0]
    scale = float(expected.abs().max()) + 1.0
    if expected.shape != got.shape or float((expected - got).abs().max()) > 1e-4 * scale:
        raise ImportModelError(
            f"cutting {type(model).__name__} into body and head changes its output; "
            "this architecture is not supported"
        )


def body_channels(net: Classifier, size: int) -> int:
    """Channels of the body's output (the layer every method reads by default): of its
    feature maps, or the width of a transformer's tokens.

    Raises:
        ImportModelError: the body gives neither feature maps ``(N, C, h, w)`` nor the tokens
            of a transformer whose layout is known, or tokens that do not form a square grid.
    """
    if isinstance(net, CamNet):
        return int(net.weight.shape[1])
    net.eval()
    with torch.no_grad():
        out = net.body(torch.zeros(1, 3, size, size))
    layout = token_layout(net)
    if out.ndim == 3 and layout is not None:
        try:
            as_feature_maps(out, layout)
        except MethodError as exc:
            raise ImportModelError(f"{exc}; this transformer's layout is not supported") from None
        return int(out.shape[-1])
    if out.ndim != 4:
        raise ImportModelError(
            f"the model's features have shape {tuple(out.shape)}, not (N, C, h, w) feature "
            "maps nor the tokens of a known vision transformer (ViT, DeiT, Swin); it cannot "
            "be explained"
        )
    return int(as_feature_maps(out, layout).shape[1])


def layer_grid(net: nn.Module, layer: str, size: int) -> tuple[int, int, int]:
    """``(C, h, w)`` of the feature maps that ``layer`` gives (tokens laid out as a grid).

    Raises:
        ImportModelError: the layer's output is not feature maps nor tokens on a square grid.
        MethodError: no such layer.
    """
    target = resolve_layer(net, layer)
    seen: list[torch.Tensor] = []
    handle = target.register_forward_hook(lambda _m, _i, out: seen.append(out))
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size))
    finally:
        handle.remove()
    if not seen or not isinstance(seen[0], torch.Tensor):
        raise ImportModelError(f"layer {layer!r} gives no tensor on the way to the logits")
    try:
        maps = as_feature_maps(seen[0], token_layout(net))
    except MethodError as exc:
        raise ImportModelError(f"layer {layer!r}: {exc}") from None
    channels, height, width = (int(d) for d in maps.shape[1:])
    return channels, height, width
