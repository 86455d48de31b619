"""Transformers' token layouts, worked out from the model: patch grids as feature maps.

A CNN layer gives feature maps ``(N, C, h, w)``. A vision transformer's blocks give tokens
``(N, P + h*w, D)``: ``P`` prefix tokens (the class token, DeiT's distillation token, register
tokens) then one token per patch, row by row. Swin's stages give channels-last maps
``(N, h, w, C)``. :func:`token_layout` reads which of these a model is from the model itself
(torchvision's ``VisionTransformer`` and ``SwinTransformer``, timm's ViT/DeiT/Swin families);
:func:`as_feature_maps` turns any layer's output into ``(N, C, h, w)`` by that layout. It is the
``reshape_transform`` that pytorch-grad-cam asks for, so the analyst writes no reshaping code.

A patch grid's cells are placed on the image by patch centres (cell ``i`` covers pixels
``p*i .. p*i + p - 1``), not on receptive-field centres like a CNN's cells: the layout says
so through :attr:`TokenLayout.placement`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cam_core.errors import MethodError
from cam_core.methods.placement import PATCHES, RECEPTIVE_FIELD

__all__ = [
    "TokenLayout",
    "as_feature_maps",
    "candidate_layers",
    "feature_vector",
    "placement_of",
    "reshape_for",
    "token_layout",
]

_VIT = "vit"
_SWIN = "swin"


@dataclass(frozen=True)
class TokenLayout:
    """How a transformer lays out its activations.

    Attributes:
        family: ``vit`` (global attention over tokens, ViT/DeiT) or ``swin`` (windowed
            attention over channels-last maps).
        patch: side of a patch in pixels (the first grid's cell).
        prefix: tokens before the patch grid in a ``(N, T, D)`` output (0 for Swin).
        blocks: dotted names of the last stage's blocks, in order.
        norm: name, inside a block, of the norm before its attention (``ln_1``, ``norm1``).
        rollout: every block's attention weights can be read (attention rollout applies).
    """

    family: str
    patch: int
    prefix: int
    blocks: tuple[str, ...]
    norm: str
    rollout: bool = False

    @property
    def placement(self) -> str:
        """Cells are patches, placed on their centres."""
        return PATCHES

    def block(self, index: int) -> str:
        """Dotted name of block ``index`` of the last stage (negative counts from the end)."""
        return self.blocks[index]

    def describe(self) -> dict[str, object]:
        """What a model card records of the layout."""
        return {
            "family": self.family,
            "patch": self.patch,
            "prefix_tokens": self.prefix,
            "last_stage_blocks": len(self.blocks),
            "rollout": self.rollout,
            "placement": self.placement,
        }

    @property
    def default_layer(self) -> str:
        """The layer read by default: the last block's first norm for ViTs (the last block's
        output reaches the head only through the class token, so the patch tokens there get no
        gradient), the body's output for Swin (pooled by the head, like a CNN's)."""
        if self.family == _VIT:
            return f"{self.block(-1)}.{self.norm}"
        return "body"


def _size(value: int | tuple[int, ...] | list[int]) -> int:
    return int(value[0]) if isinstance(value, tuple | list) else int(value)


def _children_count(module: nn.Module) -> int:
    return len(list(module.children()))


def _names(prefix: str, container: nn.Module) -> tuple[str, ...]:
    return tuple(f"{prefix}{name}" for name, _ in container.named_children())


def _layout_of(name: str, module: Any) -> TokenLayout | None:
    kind = type(module).__name__
    prefix = f"{name}." if name else ""
    if kind == "VisionTransformer" and hasattr(module, "encoder"):  # torchvision
        layers = module.encoder.layers
        return TokenLayout(
            _VIT,
            int(module.patch_size),
            1,
            _names(f"{prefix}encoder.layers.", layers),
            "ln_1",
            rollout=all(isinstance(b.self_attention, nn.MultiheadAttention) for b in layers),
        )
    if (
        hasattr(module, "num_prefix_tokens")
        and hasattr(module, "patch_embed")
        and hasattr(module, "blocks")
    ):  # timm ViT, DeiT (distilled too), with or without register tokens
        blocks = module.blocks
        return TokenLayout(
            _VIT,
            _size(module.patch_embed.patch_size),
            int(module.num_prefix_tokens),
            _names(f"{prefix}blocks.", blocks),
            "norm1",
            rollout=all(hasattr(getattr(b, "attn", None), "attn_drop") for b in blocks),
        )
    if isinstance(module, nn.Sequential) and any(
        type(child).__name__.startswith("PatchMerging") for child in module.children()
    ):  # torchvision Swin's stages (what the cut keeps of it): patch embedding, stages, merges
        first: Any = module[0]
        embed = first[0]
        last = len(module) - 1
        if isinstance(embed, nn.Conv2d):
            return TokenLayout(
                _SWIN, _size(embed.stride), 0, _names(f"{prefix}{last}.", module[last]), "norm1"
            )
    if kind in ("SwinTransformer", "SwinTransformerV2") and hasattr(module, "layers"):  # timm
        last = len(module.layers) - 1
        return TokenLayout(
            _SWIN,
            _size(module.patch_embed.patch_size),
            0,
            _names(f"{prefix}layers.{last}.blocks.", module.layers[last].blocks),
            "norm1",
        )
    return None


def token_layout(net: nn.Module) -> TokenLayout | None:
    """The layout of the first transformer inside ``net``; ``None`` for a CNN."""
    for name, module in net.named_modules():
        layout = _layout_of(name, module)
        if layout is not None:
            return layout
    return None


def placement_of(net: nn.Module) -> str:
    """Where ``net``'s map cells lie on the image (:mod:`cam_core.methods.placement`)."""
    layout = token_layout(net)
    return RECEPTIVE_FIELD if layout is None else layout.placement


def _channels_last(output: torch.Tensor) -> bool:
    """A Swin output ``(N, h, w, C)`` rather than ``(N, C, h, w)`` (inputs are square)."""
    first_is_channels = output.shape[2] == output.shape[3] and output.shape[1] != output.shape[2]
    return not first_is_channels


def as_feature_maps(output: torch.Tensor, layout: TokenLayout | None) -> torch.Tensor:
    """A layer's output as feature maps ``(N, C, h, w)``.

    Tokens ``(N, P + h*w, D)`` lose their ``P`` prefix tokens and become a ``(D, h, w)`` grid;
    Swin's channels-last maps are permuted; feature maps stay as they are.

    Raises:
        MethodError: tokens that do not form a square grid, or an output that is neither
            feature maps nor tokens of a known layout.
    """
    if output.ndim == 4:
        if layout is not None and layout.family == _SWIN and _channels_last(output):
            return output.permute(0, 3, 1, 2)
        return output
    if output.ndim == 3 and layout is not None and layout.family == _VIT:
        n, tokens, dim = output.shape
        cells = tokens - layout.prefix
        side = math.isqrt(max(cells, 0))
        if cells <= 0 or side * side != cells:
            raise MethodError(
                f"the layer gives {tokens} tokens; without the {layout.prefix} prefix token(s), "
                f"{cells} do not form a square grid of patches"
            )
        return output[:, layout.prefix :].reshape(n, side, side, dim).permute(0, 3, 1, 2)
    raise MethodError(
        f"the layer's output has shape {tuple(output.shape)}: neither feature maps "
        "(N, C, h, w) nor the tokens of a known transformer; choose a convolutional layer"
    )


def reshape_for(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`as_feature_maps` for ``net``'s layout: pytorch-grad-cam's ``reshape_transform``."""
    layout = token_layout(net)

    def reshape(output: torch.Tensor) -> torch.Tensor:
        return as_feature_maps(output, layout)

    return reshape


def feature_vector(output: torch.Tensor, layout: TokenLayout | None) -> torch.Tensor:
    """One vector per image from the body's output, as the head reads it: the class token of
    ViT tokens (their mean without a prefix), the spatial mean of feature maps."""
    if output.ndim == 3:
        return output[:, 0] if layout is not None and layout.prefix else output.mean(dim=1)
    if output.ndim == 4:
        return as_feature_maps(output, layout).mean(dim=(2, 3))
    return output.flatten(1)


def candidate_layers(net: nn.Module, image_size: int) -> list[str]:
    """The layers worth reading, coarse to fine, for ``--layer auto`` (two to four).

    CNN: the body's output, the block before it, and the last block at the next finer
    resolution (for a ResNet: the last blocks of the last two stages and the one before the
    last). ViT: the first norm of the last three blocks. Swin: the body's output and the last
    stage's last three blocks.
    """
    layout = token_layout(net)
    if layout is None:
        return _cnn_candidates(net, image_size)
    count = len(layout.blocks)
    if layout.family == _VIT:
        return [f"{layout.block(-i)}.{layout.norm}" for i in range(1, min(3, count) + 1)]
    return ["body", *(layout.block(-i) for i in range(2, min(3, count) + 1))]


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _units(module: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """The body's blocks in order: its parametrised children, a single wrapper opened, a stage
    of two or more blocks of one kind (a ResNet ``layer4``) listed block by block."""
    children = [
        (f"{name}.{n}", c)
        for n, c in module.named_children()
        if _has_parameters(c) and not isinstance(c, nn.Linear)
    ]
    if len(children) == 1 and _children_count(children[0][1]) > 1:
        return _units(children[0][1], children[0][0])
    units: list[tuple[str, nn.Module]] = []
    for child_name, child in children:
        blocks = [(f"{child_name}.{n}", c) for n, c in child.named_children()]
        kinds = {type(c) for _, c in blocks}
        if len(blocks) >= 2 and len(kinds) == 1 and _has_parameters(blocks[0][1]):
            units.extend(blocks)
        else:
            units.append((child_name, child))
    return units


def _cnn_candidates(net: nn.Module, image_size: int) -> list[str]:
    body = getattr(net, "body", None)
    if body is None:
        return ["body"]
    units = _units(body, "body")
    sides: dict[str, int] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, out, key=key: (
                sides.__setitem__(key, int(out.shape[-1]))
                if isinstance(out, torch.Tensor) and out.ndim == 4
                else None
            )
        )
        for key, module in units
    ]
    param = next(net.parameters())
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            body(torch.zeros(1, 3, image_size, image_size, dtype=param.dtype, device=param.device))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    mapped = [key for key, _ in units if key in sides]
    if len(mapped) < 2:
        return ["body"]
    last_side = sides[mapped[-1]]
    found = ["body"]
    if sides[mapped[-2]] == last_side:
        found.append(mapped[-2])
    finer = [key for key in mapped if sides[key] > last_side]
    if finer:
        found.append(finer[-1])
    return found
