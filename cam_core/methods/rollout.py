"""Attention rollout (Abnar & Zuidema, 2020) for vision transformers with global attention.

Each block's attention, averaged over heads, is mixed half and half with the identity (the
residual connection) and its rows renormalised; the product of these matrices from the first
block to the last says how much each input token flows into each output token. The class
token's row, over the patch tokens, is the map. Every row of the product sums to 1, as the
paper defines it.

No maintained library provides it for our pins (pytorch-grad-cam, captum and torchcam do not;
the small rollout packages on PyPI are unmaintained single releases), so it is written here.
The attention weights are read while the model runs: torchvision's ``nn.MultiheadAttention``
is asked for per-head weights, timm's attention is switched off its fused kernel for the pass
so that its ``attn_drop`` sees them. Only the calling thread's pass is recorded (a dashboard
shares one model between sessions).

Rollout does not depend on the class: every class gets the same map (the UI says so).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from cam_core.errors import MethodError
from cam_core.methods.base import ExplanationMethod, training_mode_kept
from cam_core.methods.layout import fast_layout
from cam_core.methods.tokens import TokenLayout, token_layout

__all__ = ["AttentionRollout", "attention_rollout", "rollout_maps"]

ROLLOUT_LAYER = "attention of every block"


def attention_rollout(attentions: list[torch.Tensor], residual: float = 0.5) -> torch.Tensor:
    """The rollout of attention matrices, first block first.

    Args:
        attentions: ``(N, H, T, T)`` or ``(N, T, T)`` per block, rows summing to 1.
        residual: weight of the identity mixed into each block's (head-averaged) attention.

    Returns:
        ``(N, T, T)``: row ``i`` is how token ``i`` of the last block draws on the input tokens;
        every row sums to 1.
    """
    if not attentions:
        raise MethodError("attention rollout needs at least one attention matrix")
    result: torch.Tensor | None = None
    for attention in attentions:
        mean = attention.float().mean(dim=1) if attention.ndim == 4 else attention.float()
        eye = torch.eye(mean.shape[-1], device=mean.device, dtype=mean.dtype)
        mixed = (1 - residual) * mean + residual * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed if result is None else mixed @ result
    assert result is not None
    return result


@contextlib.contextmanager
def _recorded_attention(net: nn.Module, layout: TokenLayout) -> Iterator[list[torch.Tensor]]:
    """Each block's attention weights ``(N, H, T, T)`` of the calling thread's forward pass."""
    caller = threading.get_ident()
    weights: list[torch.Tensor] = []
    handles = []
    switched: list[nn.Module] = []

    def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if threading.get_ident() == caller:
            weights.append((output[1] if isinstance(output, tuple) else output).detach())

    def ask_for_weights(_module: nn.Module, args: Any, kwargs: dict[str, Any]) -> Any:
        if threading.get_ident() != caller:
            return None
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    try:
        for name in layout.blocks:
            block = net.get_submodule(name)
            torchvision_attention = getattr(block, "self_attention", None)
            if isinstance(torchvision_attention, nn.MultiheadAttention):
                handles.append(
                    torchvision_attention.register_forward_pre_hook(
                        ask_for_weights, with_kwargs=True
                    )
                )
                handles.append(torchvision_attention.register_forward_hook(keep))
                continue
            attention: Any = getattr(block, "attn", None)
            if attention is None or not hasattr(attention, "attn_drop"):
                raise MethodError(f"block {name} has no attention whose weights can be read")
            if getattr(attention, "fused_attn", False):
                attention.fused_attn = False
                switched.append(attention)
            handles.append(attention.attn_drop.register_forward_hook(keep))
        yield weights
    finally:
        for handle in handles:
            handle.remove()
        for attention in switched:
            attention.fused_attn = True


@torch.no_grad()
def rollout_maps(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The class token's rollout over the patch grid, min-max scaled per image.

    Args:
        net: a ViT/DeiT classifier on its device.
        images: normalised ``(N, 3, S, S)``.

    Returns:
        float32 ``(N, h, w)`` on the CPU.

    Raises:
        MethodError: the model is not a transformer with readable global attention.
    """
    return _rollout(net, images)[0]


def _rollout(net: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, int]:
    """:func:`rollout_maps`, and the number of classes of the pass it read."""
    layout = token_layout(net)
    reason = _reason(layout)
    if reason is not None:
        raise MethodError(f"attention rollout does not apply: {reason}")
    assert layout is not None
    device = next(net.parameters()).device
    with torch.no_grad(), training_mode_kept(net), _recorded_attention(net, layout) as weights:
        logits = net(fast_layout(images.detach().to(device, torch.float32)))
    if len(weights) != len(layout.blocks):
        raise MethodError(
            f"read the attention of {len(weights)} of {len(layout.blocks)} blocks; "
            "this model's attention cannot be rolled out"
        )
    flow = attention_rollout(weights)[:, 0, layout.prefix :]
    side = math.isqrt(flow.shape[-1])
    if side * side != flow.shape[-1]:
        raise MethodError(f"{flow.shape[-1]} patch tokens do not form a square grid")
    maps = flow.reshape(len(flow), side, side).cpu()
    low = maps.flatten(1).min(dim=1).values[:, None, None]
    high = maps.flatten(1).max(dim=1).values[:, None, None]
    return ((maps - low) / (high - low).clamp_min(1e-12)).float(), int(logits.shape[1])


def _reason(layout: TokenLayout | None) -> str | None:
    if layout is None:
        return "it needs a vision transformer (ViT, DeiT); this model has no attention blocks"
    if layout.family != "vit":
        return (
            "it needs global attention with a class token (ViT, DeiT); Swin attends within windows"
        )
    if not layout.rollout:
        return "this transformer's attention weights cannot be read"
    if layout.prefix < 1:
        return "the model has no class token whose attention could be followed"
    return None


class AttentionRollout(ExplanationMethod):
    """Attention rollout: how the class token draws on each patch through every block.

    Class-agnostic: the same map for every class (it follows attention, not a class score).
    """

    name = "rollout"
    title = "Attention rollout"
    class_agnostic = True

    def applies_to(self, net: nn.Module) -> str | None:
        return _reason(token_layout(net))

    def layer_for(self, requested: str) -> str:
        return ROLLOUT_LAYER

    def explain(
        self,
        net: nn.Module,
        images: torch.Tensor,
        layer: str,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        single, n_classes = _rollout(net, images)
        slots = n_classes if classes is None else int(classes.shape[1])
        return single[:, None].expand(-1, slots, -1, -1).contiguous()
