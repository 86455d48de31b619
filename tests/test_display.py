"""The presentation layer: one format per kind of figure, one label per verdict, one note per
meaning of map values."""

from __future__ import annotations

import math

import pytest

from cam_core.methods import MethodRecord
from cam_core.present.display import (
    BASELINE_TITLES,
    display_value,
    map_meaning,
    map_note,
    map_title,
    method_title,
)


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("percent", 0.90249, "90.2%"),
        ("percent", 1.0, "100.0%"),
        ("score", 0.68349, "0.683"),
        ("correlation", 0.4949, "+0.49"),
        ("correlation", -0.1, "-0.10"),
        ("probability", 0.996, "1.00"),
        ("count", 12.0, "12"),
        ("check", True, "passed"),
        ("check", False, "FAILED"),
        ("check", None, "–"),
        ("text", "cat", "cat"),
    ],
)
def test_each_kind_has_one_format(kind: str, value: object, shown: str) -> None:
    assert display_value(kind, value) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["percent", "score", "correlation", "probability", "count"])
@pytest.mark.parametrize("missing", [None, math.nan, float("nan")])
def test_a_figure_that_was_not_measured_shows_a_dash_never_none(kind: str, missing: object) -> None:
    assert display_value(kind, missing) == "–"  # type: ignore[arg-type]


def _record(additive: bool, bias: tuple[float, ...] | None = None) -> MethodRecord:
    return MethodRecord("M", "body", additive, not additive, "x", bias=bias)


def test_map_words_follow_what_the_values_mean() -> None:
    assert map_meaning(_record(True)) == "mean = logit (additive)"
    assert map_meaning(_record(True, (0.1, 0.2))) == "mean + bias = logit (additive)"
    assert map_meaning(_record(False)) == "scaled 0–1 per map"
    assert "bias" in map_note(_record(True, (0.1,))) and "scaled" in map_note(_record(False))
    assert map_title("cat", 1.5, _record(True, (0.1, 0.2)), 0.2) == (
        "cat: mean +1.500 + bias +0.200 = logit"
    )
    assert map_title("cat", -0.25, _record(True)) == "cat: mean -0.250 = logit"
    assert map_title("dog", 0.3, _record(False)) == "dog (scaled 0–1 per map)"


def test_method_titles_for_records_registry_and_baselines() -> None:
    records = {"gradcam": MethodRecord("My Grad-CAM", "body", False, True, "x")}
    assert method_title("gradcam", records) == "My Grad-CAM"
    assert method_title("cam", records) == "CAM (exact)"
    assert method_title("centre", records) == BASELINE_TITLES["centre"]


def test_cards_mark_unfamiliar_images_and_near_copies() -> None:
    from cam_core.present.display import finding_marks, unfamiliar_warning

    assert finding_marks({"unfamiliar": False, "near_duplicate": False, "leaked": False}) == ""
    assert finding_marks({"unfamiliar": True, "less_familiar_than": 99.71}) == (
        " · unfamiliar (less familiar than 99.7% of validation images)"
    )
    assert finding_marks({"near_duplicate": True}) == " · near-duplicate"
    assert finding_marks({"near_duplicate": True, "leaked": True}) == (
        " · near-copy of a training image"
    )
    assert "unlike the images this model was trained on" in unfamiliar_warning(100.0)
