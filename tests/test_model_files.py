from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from cam_core.errors import ModelFileError
from cam_core.modelling.model_files import MODEL_FORMAT, load_model, read_card
from tests.conftest import make_model


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    make_model(tmp_path / "m", classes=("cat", "dog", "fox"), seed=1)
    return tmp_path / "m"


def test_round_trip_gives_identical_outputs(model_dir: Path) -> None:
    first = load_model(model_dir, "cpu")
    second = load_model(model_dir, "cpu")
    assert first.card.classes == ("cat", "dog", "fox")
    assert first.card.format_version == MODEL_FORMAT
    assert len(first.card.weights_sha256) == 64
    assert {"torch", "torchvision", "cam_core"} <= set(first.card.versions)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(first.net(x), second.net(x))
    assert not first.net.training


def test_modified_weights_fail_the_hash_check(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="sha256"):
        load_model(model_dir)


def test_truncated_and_missing_weights(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated or modified"):
        load_model(model_dir)
    weights.unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_model(model_dir)


def test_card_problems_are_named(model_dir: Path) -> None:
    card_path = model_dir / "model.json"
    raw = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**raw, "format_version": MODEL_FORMAT + 1}))
    with pytest.raises(ModelFileError, match="newer than this cam_core"):
        read_card(model_dir)
    card_path.write_text(json.dumps({k: v for k, v in raw.items() if k != "classes"}))
    with pytest.raises(ModelFileError, match="lacks classes"):
        read_card(model_dir)
    card_path.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_card(model_dir)
    card_path.unlink()
    with pytest.raises(ModelFileError, match=r"model\.json is missing"):
        read_card(model_dir)
    with pytest.raises(ModelFileError, match="does not exist"):
        read_card(model_dir / "nope")


class _Canary:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.path), "pwned"))


def test_a_crafted_pickle_is_refused_without_running(model_dir: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    payload = pickle.dumps({"weights": _Canary(str(canary))})
    weights = model_dir / "model.safetensors"
    weights.write_bytes(payload)
    card_path = model_dir / "model.json"
    raw = json.loads(card_path.read_text())
    import hashlib

    raw["weights_sha256"] = hashlib.sha256(payload).hexdigest()
    card_path.write_text(json.dumps(raw))
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        load_model(model_dir)
    assert not canary.exists()


def test_weights_of_another_architecture_are_refused(model_dir: Path) -> None:
    card_path = model_dir / "model.json"
    raw = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**raw, "arch": "resnet18", "n_features": 512}))
    with pytest.raises(ModelFileError, match="does not fit architecture 'resnet18'"):
        load_model(model_dir)


def test_a_model_of_the_first_demo_cnn_still_loads(tmp_path: Path) -> None:
    make_model(tmp_path / "old", arch="democnn")
    old = load_model(tmp_path / "old")
    assert old.card.arch == "democnn"
    assert old.net.body[6][0].kernel_size == (3, 3)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert old.net(x).shape == (2, 2)
    # Its weights do not pass for the current demo CNN, whose last convolutions are 1x1.
    card_path = tmp_path / "old" / "model.json"
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "arch": "democnn2"}))
    with pytest.raises(ModelFileError, match="does not fit architecture 'democnn2'"):
        load_model(tmp_path / "old")
