"""What an analysis records about each method it ran: a typed record, built by the method.

The manifest stores one :class:`MethodRecord` per method (``manifest.json``'s ``methods``
block, same keys as artifact format 2); readers use its fields instead of looking up strings.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cam_core.methods.placement import PLACEMENTS, RECEPTIVE_FIELD

__all__ = ["MapValues", "MethodRecord"]


class MapValues(enum.Enum):
    """What the numbers in a method's maps mean (presentation words live in ``present``)."""

    LOGIT = "mean is the logit"
    LOGIT_WITH_BIAS = "mean plus the class bias is the logit"
    SCALED = "min-max scaled 0 to 1 per map"
    RAW = "raw scores"


@dataclass(frozen=True)
class MethodRecord:
    """One method as an analysis ran it.

    Attributes:
        title: the method's display name.
        layer: the dotted name of the layer it read.
        additive: a map's spatial mean is the class logit (plus ``bias`` where there is one).
        normalised: maps are min-max scaled per image and class.
        library: where the computation came from.
        precision: the precision its maps were computed in.
        seconds: wall time spent on its maps.
        bias: per-class bias of the head (additive maps of imported heads), else ``None``.
        shape: ``(N, S, h, w)`` of its maps (``S = K`` when they hold every class).
        file: the maps' file, relative to the artifact folder.
        classes_file: the file of the class of each slot ``(N, S)`` when the maps hold a
            class budget (:mod:`cam_core.methods.budget`); empty when they hold every class.
        placement: where the maps' cells lie on the image (:mod:`cam_core.methods.placement`:
            receptive-field centres for CNNs, patch centres for transformers).
        class_agnostic: every class has the same map (attention rollout).
    """

    title: str
    layer: str
    additive: bool
    normalised: bool
    library: str
    precision: str = "fp32"
    seconds: float = 0.0
    bias: tuple[float, ...] | None = None
    shape: tuple[int, ...] = ()
    file: str = ""
    classes_file: str = ""
    placement: str = RECEPTIVE_FIELD
    class_agnostic: bool = False

    @property
    def values(self) -> MapValues:
        """What the map values mean."""
        if self.additive:
            return MapValues.LOGIT_WITH_BIAS if self.bias is not None else MapValues.LOGIT
        return MapValues.SCALED if self.normalised else MapValues.RAW

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON entry (``bias`` only where there is one)."""
        entry: dict[str, Any] = {
            "title": self.title,
            "layer": self.layer,
            "additive": self.additive,
            "normalised": self.normalised,
            "library": self.library,
            "precision": self.precision,
            "seconds": round(self.seconds, 3),
            "shape": list(self.shape),
            "file": self.file,
        }
        if self.bias is not None:
            entry["bias"] = list(self.bias)
        if self.classes_file:
            entry["classes_file"] = self.classes_file
        if self.placement != RECEPTIVE_FIELD:
            entry["placement"] = self.placement
        if self.class_agnostic:
            entry["class_agnostic"] = True
        return entry

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> MethodRecord:
        """Read a manifest entry; older entries lack ``precision`` (fp32) and ``seconds``.

        Raises:
            ValueError: a missing ``shape``/``file`` or a value of the wrong type.
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"method {name!r} is not an object")
        bias = raw.get("bias")
        shape = raw.get("shape")
        file = raw.get("file")
        if not isinstance(shape, list) or not isinstance(file, str):
            raise ValueError(f"method {name!r} lacks its shape or file")
        return cls(
            title=str(raw.get("title", name)),
            layer=str(raw.get("layer", "body")),
            additive=bool(raw.get("additive", False)),
            normalised=bool(raw.get("normalised", not raw.get("additive", False))),
            library=str(raw.get("library", "")),
            precision=str(raw.get("precision", "fp32")),
            seconds=float(raw.get("seconds", 0.0)),
            bias=tuple(float(b) for b in bias) if isinstance(bias, list) else None,
            shape=tuple(int(d) for d in shape),
            file=file,
            classes_file=str(raw.get("classes_file", "")),
            placement=_placement(name, raw.get("placement", RECEPTIVE_FIELD)),
            class_agnostic=bool(raw.get("class_agnostic", False)),
        )


def _placement(name: str, value: Any) -> str:
    if value not in PLACEMENTS:
        raise ValueError(f"method {name!r} has an unknown placement {value!r}")
    return str(value)
