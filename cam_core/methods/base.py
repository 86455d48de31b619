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
from cam_core.methods.record import MethodRecord
from cam_core.methods.tokens import placement_of

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
        shares_forward: the maps come out of the forward pass that gives the logits
            (:meth:`explain_from_features`): the batch path runs that pass once, in the
            analysis's precision, instead of a separate pass for the maps. Such maps cover
            every class at no cost, so they ignore the class budget.
        class_agnostic: the map does not depend on the class (attention rollout): every class
            gets the same map, and the UI says so.
    """

    name: str
    title: str
    additive: bool = False
    normalised: bool = True
    library: str = "cam_core"
    costly: bool = False
    shares_forward: bool = False
    class_agnostic: bool = False

    def applies_to(self, net: nn.Module) -> str | None:
        """``None`` when the method works on ``net``, else the reason it does not."""
        return None

    def layer_for(self, requested: str) -> str:
        """The layer this method reads when the user asks for ``requested``."""
        return requested

    def explain_from_features(
        self, net: nn.Module, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and every class map from the body's output of the forward pass (methods
        with ``shares_forward``).

        Args:
            net: the classifier (its ``body`` gave ``features``).
            features: the output of ``net.body`` ``(N, C, h, w)``, on the model's device.

        Returns:
            ``(logits, maps)``: ``(N, K)`` and ``(N, K, h, w)`` on the model's device, in the
            precision the caller runs (e.g. under autocast).

        Raises:
            MethodError: the method's maps do not come out of the forward pass.
        """
        raise MethodError(f"{self.title} maps do not come out of the model's forward pass")

    def precision_for(self, forward_precision: str) -> str:
        """The precision this method's maps are computed in when the forward pass runs in
        ``forward_precision``: that one for methods that share it, else fp32."""
        return forward_precision if self.shares_forward else "fp32"

    def bias_of(self, net: nn.Module) -> tuple[float, ...] | None:
        """The per-class bias added to an additive map's mean to give the logit, if any."""
        return None

    def record(
        self,
        net: nn.Module,
        layer: str,
        forward_precision: str,
        seconds: float,
        shape: tuple[int, ...],
        file: str,
        classes_file: str = "",
    ) -> MethodRecord:
        """What an analysis records of this method's run on ``net``.

        Args:
            net: the analysed classifier.
            layer: the layer the user asked for (the record holds :meth:`layer_for` of it).
            forward_precision: the precision of the logits' forward pass.
            seconds: wall time spent on the maps.
            shape: ``(N, S, h, w)`` of the maps.
            file: where the maps are stored, relative to the artifact folder.
            classes_file: where the class of each slot is stored, for maps of a class budget.
        """
        return MethodRecord(
            title=self.title,
            layer=self.layer_for(layer),
            additive=self.additive,
            normalised=self.normalised,
            library=self.library,
            precision=self.precision_for(forward_precision),
            seconds=seconds,
            bias=self.bias_of(net),
            shape=shape,
            file=file,
            classes_file=classes_file,
            placement=placement_of(net),
            class_agnostic=self.class_agnostic,
        )

    @abstractmethod
    def explain(
        self,
        net: nn.Module,
        images: torch.Tensor,
        layer: str,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Maps of chosen classes (or every class) for a batch.

        Args:
            net: a classifier ``(N, 3, S, S) → (N, K)`` on its device, float32.
            images: normalised images ``(N, 3, S, S)``.
            layer: dotted name of the layer whose activations the method reads.
            classes: int64 ``(N, S)``, the classes to explain for each image (slot ``s`` of
                image ``i`` is class ``classes[i, s]``); ``None`` for every class.

        Returns:
            float32 maps ``(N, S, h, w)`` (``(N, K, h, w)`` for every class) on the CPU,
            ``h, w`` the layer's resolution.

        Raises:
            MethodError: the method does not apply to this model or layer.
        """
