"""The seam every explanation method plugs into: what a method declares and computes.

A method takes a classifier and a batch of normalised images and returns one map per class for
every image, ``(N, K, h, w)``, at the resolution of the layer it reads. Methods that need a
CAM head, gradients or many forward passes say so through their attributes, so callers (the
analysis, the dashboard) ask the method instead of knowing it.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import nn

from cam_core.errors import MethodError

__all__ = ["DEFAULT_LAYER", "ExplanationMethod", "resolve_layer", "training_mode_kept"]

DEFAULT_LAYER = "body"
"""The CAM body's output: the last feature maps before global pooling."""


def resolve_layer(net: nn.Module, layer: str) -> nn.Module:
    """The sub-module called ``layer`` (dotted path, e.g. ``body`` or ``body.6``).

    Raises:
        MethodError: no such module.
    """
    try:
        return net.get_submodule(layer)
    except AttributeError:
        names = [name for name, _ in net.named_children()]
        raise MethodError(
            f"the model has no layer {layer!r}; use a dotted module name such as "
            f"{', '.join(names[:3]) or 'body'} (or body.<index> for a block of the body)"
        ) from None


@contextlib.contextmanager
def training_mode_kept(net: nn.Module) -> Iterator[None]:
    """Run in eval mode and put the module's train/eval mode back afterwards.

    Gradient libraries call ``model.eval()`` and never switch back.
    """
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


class ExplanationMethod(ABC):
    """One explanation method.

    Attributes:
        name: registry key and artifact file stem (``maps/<name>.npy``).
        title: human-readable name.
        additive: a map's spatial mean is the class logit (only exact CAM); the UI shows
            "mean = logit" for these alone.
        normalised: maps are min-max scaled to 0..1 per image and class (gradient and score
            methods), so values are comparable within a map, not across images.
        library: where the computation comes from (``cam_core`` or ``grad-cam==…``).
        costly: needs many forward passes per image (run on other data only when asked).
    """

    name: str
    title: str
    additive: bool = False
    normalised: bool = True
    library: str = "cam_core"
    costly: bool = False

    def applies_to(self, net: nn.Module) -> str | None:
        """``None`` when the method works on ``net``, else the reason it does not."""
        return None

    def layer_for(self, requested: str) -> str:
        """The layer this method reads when the user asks for ``requested``."""
        return requested

    @abstractmethod
    def explain(self, net: nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
        """Maps of every class for a batch.

        Args:
            net: a classifier ``(N, 3, S, S) → (N, K)`` on its device, float32.
            images: normalised images ``(N, 3, S, S)``.
            layer: dotted name of the layer whose activations the method reads.

        Returns:
            float32 maps ``(N, K, h, w)`` on the CPU, ``h, w`` the layer's resolution.

        Raises:
            MethodError: the method does not apply to this model or layer.
        """
