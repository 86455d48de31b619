"""Explanation methods behind one seam, and their registry.

Adding a method: one new file in this folder with a subclass of
:class:`~cam_core.methods.base.ExplanationMethod`, and one entry in :data:`METHODS` below.
"""

from __future__ import annotations

from cam_core.errors import MethodError
from cam_core.methods.activation import ClassActivationMap
from cam_core.methods.base import DEFAULT_LAYER, ExplanationMethod
from cam_core.methods.gradient import GradCam, GradCamPlusPlus, LayerCam
from cam_core.methods.score import ScoreCam

__all__ = ["DEFAULT_LAYER", "METHODS", "ExplanationMethod", "get_method", "parse_methods"]

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
