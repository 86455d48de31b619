"""Explanation methods behind one seam, and their registry.

Adding a method: one new file in this folder with a subclass of
:class:`~cam_core.methods.base.ExplanationMethod`, and one entry in :data:`METHODS` below.
"""

from __future__ import annotations

from torch import nn

from cam_core.errors import MethodError
from cam_core.methods.activation import ClassActivationMap
from cam_core.methods.base import DEFAULT_LAYER, ExplanationMethod
from cam_core.methods.gradient import GradCam, GradCamPlusPlus, LayerCam
from cam_core.methods.score import ScoreCam

__all__ = [
    "DEFAULT_LAYER",
    "METHODS",
    "ExplanationMethod",
    "applicable",
    "default_method",
    "get_method",
    "parse_methods",
    "unavailable",
]

METHODS: dict[str, ExplanationMethod] = {
    method.name: method
    for method in (ClassActivationMap(), GradCam(), GradCamPlusPlus(), ScoreCam(), LayerCam())
}
"""Every method by name, in the order the dashboard lists them."""


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


def default_method(net: nn.Module) -> str:
    """Exact CAM where the head allows it, else Grad-CAM (which applies to any CNN)."""
    return "cam" if METHODS["cam"].applies_to(net) is None else "gradcam"
