"""Explanation methods behind one seam, and their registry.

Adding a method: one new file in this folder with a subclass of
:class:`~cam_core.methods.base.ExplanationMethod`, and one entry in :data:`METHODS` below.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn

from cam_core.errors import MethodError
from cam_core.methods.activation import ClassActivationMap
from cam_core.methods.base import DEFAULT_LAYER, ExplanationMethod
from cam_core.methods.gradient import (
    GradCam,
    GradCamPlusPlus,
    GradientMethod,
    LayerCam,
    gradient_maps,
)
from cam_core.methods.record import MapValues, MethodRecord
from cam_core.methods.rollout import AttentionRollout
from cam_core.methods.score import ScoreCam

__all__ = [
    "DEFAULT_LAYER",
    "DEFAULT_METHODS",
    "METHODS",
    "ExplanationMethod",
    "MapValues",
    "MethodRecord",
    "applicable",
    "checked_methods",
    "default_method",
    "explain_methods",
    "forward_method",
    "get_method",
    "layer_readers",
    "parse_methods",
    "primary_method",
    "unavailable",
]

METHODS: dict[str, ExplanationMethod] = {
    method.name: method
    for method in (
        ClassActivationMap(),
        GradCam(),
        GradCamPlusPlus(),
        ScoreCam(),
        LayerCam(),
        AttentionRollout(),
    )
}
"""Every method by name, in the order the dashboard lists them."""

DEFAULT_METHODS = tuple(name for name, method in METHODS.items() if not method.costly)
"""Every method but the costly ones (Score-CAM: one forward pass per channel per image)."""


def layer_readers(net: nn.Module) -> tuple[str, ...]:
    """The methods that read a chosen layer and apply to ``net`` (the gradient methods), in
    registry order: what ``--layer auto`` scores layers with."""
    return tuple(
        name
        for name, method in METHODS.items()
        if isinstance(method, GradientMethod) and method.applies_to(net) is None
    )


def get_method(name: str) -> ExplanationMethod:
    """The method called ``name``.

    Raises:
        MethodError: unknown name (the message lists the known ones).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(
            f"unknown explanation method {name!r}; choose from {', '.join(METHODS)}"
        ) from None


def parse_methods(text: str) -> tuple[str, ...]:
    """``"cam,gradcam"`` → ``("cam", "gradcam")``, checked, without duplicates, in order.

    Raises:
        MethodError: an unknown or empty list.
    """
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise MethodError(f"no explanation method in {text!r}; e.g. cam,gradcam")
    for name in names:
        get_method(name)
    return names


def unavailable(net: nn.Module, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Method name → why it does not apply to ``net``, for the methods that do not."""
    reasons = {name: get_method(name).applies_to(net) for name in names or tuple(METHODS)}
    return {name: reason for name, reason in reasons.items() if reason is not None}


def applicable(net: nn.Module, names: tuple[str, ...]) -> tuple[str, ...]:
    """The methods of ``names`` that apply to ``net``, in order."""
    missing = unavailable(net, names)
    return tuple(name for name in names if name not in missing)


def checked_methods(net: nn.Module, names: Sequence[str]) -> tuple[ExplanationMethod, ...]:
    """The methods called ``names``, each checked to apply to ``net``.

    Raises:
        MethodError: an unknown name, or a method that does not apply (with the reason).
    """
    chosen = tuple(get_method(name) for name in names)
    for method in chosen:
        reason = method.applies_to(net)
        if reason is not None:
            raise MethodError(f"{method.title} does not apply to this model: {reason}")
    return chosen


def default_method(net: nn.Module) -> str:
    """The first registered method that applies to ``net`` and is not costly: exact CAM where
    the head allows it, else Grad-CAM (which applies to any CNN)."""
    for name in DEFAULT_METHODS:
        if METHODS[name].applies_to(net) is None:
            return name
    raise MethodError("no explanation method applies to this model")


def primary_method(names: Sequence[str]) -> str:
    """The method an analysis of ``names`` is summarised by (headline figures, report, first
    in every selector): the first additive one (its maps average to the logits), else the
    first.

    Raises:
        MethodError: no method at all.
    """
    if not names:
        raise MethodError("no explanation method was analysed")
    return next((name for name in names if name in METHODS and METHODS[name].additive), names[0])


def forward_method() -> ExplanationMethod:
    """The method whose maps come out of the logits' forward pass (artifact format 1 stored
    only its maps, as ``cams.npy``)."""
    return next(method for method in METHODS.values() if method.shares_forward)


def explain_methods(
    methods: Sequence[ExplanationMethod],
    net: nn.Module,
    images: torch.Tensor,
    layer: str,
    classes: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Every method's maps of a batch, the gradient methods reading one layer from shared passes.

    Args:
        methods: methods that apply to ``net``.
        net: a classifier on its device, float32.
        images: normalised images ``(N, 3, S, S)``.
        layer: the layer the user asked for (each method reads its ``layer_for`` of it).
        classes: int64 ``(N, S)`` classes to explain per image; ``None`` for every class.
            Methods whose maps come with the forward pass (exact CAM) give every class.

    Returns:
        ``(maps, seconds)``: method name → float32 ``(N, S, h, w)`` on the CPU, and the wall
        time of each (shared passes split evenly among the methods that shared them).
    """
    maps: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    groups: dict[str, list[GradientMethod]] = {}
    for method in methods:
        if isinstance(method, GradientMethod):
            groups.setdefault(method.layer_for(layer), []).append(method)
            continue
        start = time.perf_counter()
        maps[method.name] = method.explain(
            net, images, method.layer_for(layer), None if method.shares_forward else classes
        )
        seconds[method.name] = time.perf_counter() - start
    for group_layer, group in groups.items():
        start = time.perf_counter()
        maps.update(gradient_maps(group, net, images, group_layer, classes))
        share = (time.perf_counter() - start) / len(group)
        seconds.update({method.name: share for method in group})
    return {method.name: maps[method.name] for method in methods}, seconds
