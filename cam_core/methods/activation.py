"""Exact class activation maps (Zhou et al., 2016) from the CAM head's own forward pass."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from cam_core.errors import MethodError
from cam_core.methods.base import DEFAULT_LAYER, ExplanationMethod

__all__ = ["ClassActivationMap", "MapsInForward"]


@runtime_checkable
class MapsInForward(Protocol):
    """A classifier with a CAM head: global average pooling and one linear layer, so its
    forward pass can give every class map along with the logits."""

    bias: torch.Tensor | None

    def maps_from_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(N, K)`` and maps ``(N, K, h, w)`` from the body's output."""
        ...


class ClassActivationMap(ExplanationMethod):
    """``einsum('ocij,kc->okij', body(x), W)``: each map's mean is its logit exactly (plus the
    class's bias for imported heads that have one)."""

    name = "cam"
    title = "CAM (exact)"
    additive = True
    normalised = False
    shares_forward = True

    def applies_to(self, net: nn.Module) -> str | None:
        if isinstance(net, MapsInForward):
            return None
        # A body and head cut from another classifier says what its head is.
        head_kind = getattr(net, "head_kind", None)
        if isinstance(head_kind, str):
            return head_kind
        return "exact CAM needs global average pooling followed by one linear layer"

    def layer_for(self, requested: str) -> str:
        """Always the body's output: exact CAM is defined before global pooling only."""
        return DEFAULT_LAYER

    def bias_of(self, net: nn.Module) -> tuple[float, ...] | None:
        bias = net.bias if isinstance(net, MapsInForward) else None
        return tuple(float(b) for b in bias.detach().cpu()) if bias is not None else None

    def explain_from_features(
        self, net: nn.Module, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(net, MapsInForward):
            raise MethodError(str(self.applies_to(net)))
        return net.maps_from_features(features)

    @torch.inference_mode()
    def explain(
        self,
        net: nn.Module,
        images: torch.Tensor,
        layer: str,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        reason = self.applies_to(net)
        if reason is not None:
            raise MethodError(reason)
        if layer != DEFAULT_LAYER:
            raise MethodError(
                f"exact CAM reads the layer before pooling ({DEFAULT_LAYER}), not {layer!r}"
            )
        device = next(net.parameters()).device
        features = net.get_submodule(DEFAULT_LAYER)(images.to(device))
        _, maps = self.explain_from_features(net, features)
        maps = maps.float().cpu()
        if classes is None:
            return maps
        return maps[torch.arange(len(maps))[:, None], classes.cpu()]
