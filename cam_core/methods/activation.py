"""Exact class activation maps (Zhou et al., 2016) from the CAM head's own forward pass."""

from __future__ import annotations

import torch
from torch import nn

from cam_core.errors import MethodError
from cam_core.methods.base import DEFAULT_LAYER, ExplanationMethod
from cam_core.models import CamNet, SplitNet

__all__ = ["ClassActivationMap"]


class ClassActivationMap(ExplanationMethod):
    """``einsum('ocij,kc->okij', body(x), W)``: each map's mean is its logit exactly (plus the
    class's bias for imported heads that have one)."""

    name = "cam"
    title = "CAM (exact)"
    additive = True
    normalised = False

    def applies_to(self, net: nn.Module) -> str | None:
        if isinstance(net, CamNet):
            return None
        if isinstance(net, SplitNet):
            return net.head_kind
        return "exact CAM needs global average pooling followed by one linear layer"

    def layer_for(self, requested: str) -> str:
        """Always the body's output: exact CAM is defined before global pooling only."""
        return DEFAULT_LAYER

    @torch.inference_mode()
    def explain(self, net: nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
        reason = self.applies_to(net)
        if reason is not None:
            raise MethodError(reason)
        if layer != DEFAULT_LAYER:
            raise MethodError(
                f"exact CAM reads the layer before pooling ({DEFAULT_LAYER}), not {layer!r}"
            )
        assert isinstance(net, CamNet)
        device = next(net.parameters()).device
        _, maps = net.forward_with_maps(images.to(device))
        return maps.float().cpu()
