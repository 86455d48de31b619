"""Typed method records: built by the method, written and read as the manifest's JSON."""

from __future__ import annotations

import pytest
import torch

from cam_core.methods import METHODS, MapValues, MethodRecord, get_method, primary_method
from cam_core.modelling.models import CamNet, build_body


def test_each_method_builds_its_record_with_layer_precision_and_bias() -> None:
    net = CamNet(build_body("democnn2"), 3, bias=True)
    with torch.no_grad():
        net.head[2].bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    cam = get_method("cam").record(net, "body.3", "bf16", 1.25, (4, 3, 6, 6), "maps/cam.npy")
    assert cam.layer == "body"  # exact CAM always reads the body's output
    assert cam.precision == "bf16" and cam.bias == (0.5, -1.0, 2.0)
    assert cam.values is MapValues.LOGIT_WITH_BIAS
    grad = get_method("gradcam").record(net, "body.3", "bf16", 2.0, (4, 3, 6, 6), "maps/g.npy")
    assert grad.layer == "body.3" and grad.precision == "fp32" and grad.bias is None
    assert grad.values is MapValues.SCALED and not grad.additive


@pytest.mark.parametrize("name", list(METHODS))
def test_a_record_survives_the_manifest_json(name: str) -> None:
    net = CamNet(build_body("democnn2"), 2)
    record = get_method(name).record(net, "body", "fp32", 0.123456, (5, 2, 12, 12), "m.npy")
    entry = record.to_json()
    assert "bias" not in entry and entry["seconds"] == 0.123
    back = MethodRecord.from_json(name, entry)
    assert back == MethodRecord(**{**record.__dict__, "seconds": 0.123})


def test_an_old_entry_reads_with_defaults_and_a_broken_one_is_refused() -> None:
    old = MethodRecord.from_json("cam", {"shape": [1, 2, 3, 3], "file": "cams.npy"})
    assert old.title == "cam" and old.precision == "fp32" and old.layer == "body"
    with pytest.raises(ValueError, match="lacks its shape or file"):
        MethodRecord.from_json("cam", {"title": "CAM"})
    with pytest.raises(ValueError, match="not an object"):
        MethodRecord.from_json("cam", ["shape"])  # type: ignore[arg-type]


def test_the_primary_method_is_the_first_additive_one() -> None:
    assert primary_method(("gradcam", "cam", "layercam")) == "cam"
    assert primary_method(("layercam", "gradcam")) == "layercam"
