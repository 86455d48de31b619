"""Which layer to read: candidates scored against the baselines and the sanity check."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from cam_core.errors import MethodError
from cam_core.evaluation.baselines import baseline_maps
from cam_core.evaluation.faithfulness import shared_perturbation_curves
from cam_core.evaluation.layers import LayerChoice, LayerScore, _decide, choose_layer
from cam_core.evaluation.sanity import randomization_spearman
from cam_core.methods import get_method
from cam_core.modelling.models import CamNet, build_body
from cam_core.present.tables import layer_choice_display


def _score(layer: str, deletion: float, insertion: float, faithful: bool, sane: bool) -> LayerScore:
    return LayerScore(
        layer=layer,
        grid=(4, 4),
        deletion_auc=deletion,
        insertion_auc=insertion,
        baselines={"random": {"deletion_auc": 0.5, "insertion_auc": 0.5}},
        randomization_spearman=0.1 if sane else 0.9,
        faithful=faithful,
        sanity_passed=sane,
    )


def test_the_most_faithful_of_the_good_candidates_wins() -> None:
    scores = [
        _score("body", 0.30, 0.70, True, True),  # margin 0.40
        _score("body.5", 0.20, 0.90, True, False),  # best margin, fails sanity
        _score("body.3", 0.25, 0.80, True, True),  # margin 0.55: chosen
        _score("body.1", 0.10, 0.95, False, True),  # best sane margin, not faithful
    ]
    layer, reason = _decide(scores)
    assert layer == "body.3" and "beat both baselines and pass the sanity check" in reason
    layer, reason = _decide([scores[1], scores[3], scores[0]])
    assert layer == "body"  # the faithful and sane one, though another has a larger margin


def test_fallbacks_say_which_rule_decided() -> None:
    unfaithful = [_score("body", 0.5, 0.6, False, True), _score("body.5", 0.4, 0.7, False, True)]
    layer, reason = _decide(unfaithful)
    assert layer == "body.5" and reason.startswith("no candidate beat both baselines")
    insane = [_score("body", 0.1, 0.9, True, False), _score("body.5", 0.1, 0.95, True, False)]
    layer, reason = _decide(insane)
    assert layer == "body" and "no candidate passed the sanity check" in reason


@pytest.fixture(scope="module")
def cnn() -> CamNet:
    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 3).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return net


def test_each_candidate_is_scored_as_the_suite_would_score_it(cnn: CamNet) -> None:
    images = torch.randn(10, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    targets = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    asked: list[np.ndarray] = []

    def images_for(rows: np.ndarray) -> torch.Tensor:
        asked.append(rows)
        return images[rows]

    choice = choose_layer(
        cnn, images_for, targets, 48, "gradcam", sample_n=6, sanity_n=3, steps=4, seed=7
    )
    sample = asked[0]
    assert len(set(sample.tolist())) == 6 and list(sample) == sorted(sample)  # no repeats
    assert [c.layer for c in choice.candidates] == ["body", "body.5", "body.3"]
    assert choice.chosen in {"body", "body.5", "body.3"} and choice.reason
    assert (choice.sample_size, choice.sanity_size, choice.steps, choice.seed) == (6, 3, 4, 7)
    fine = choice.score_of("body.3")
    assert fine is not None and fine.grid == (12, 12)
    own = torch.as_tensor(targets[sample])[:, None]
    maps = get_method("gradcam").explain(cnn, images[sample], "body.3", own).numpy()[:, 0]
    random = baseline_maps("random", 6, 12, 12, 7)
    curves = shared_perturbation_curves(
        cnn, images[sample], {"m": maps, "random": random}, targets[sample], 4
    )
    assert fine.deletion_auc == pytest.approx(float(curves["m"].deletion_auc.mean()))
    assert fine.insertion_auc == pytest.approx(float(curves["m"].insertion_auc.mean()))
    assert fine.baselines["random"]["deletion_auc"] == pytest.approx(
        float(curves["random"].deletion_auc.mean())
    )
    spearman = randomization_spearman(
        get_method("gradcam"), cnn, images[sample][:3], maps[:3], targets[sample][:3], "body.3", 7
    )["head+last block"]
    assert fine.randomization_spearman == pytest.approx(spearman)
    faithful = all(
        fine.deletion_auc < b["deletion_auc"] and fine.insertion_auc > b["insertion_auc"]
        for b in fine.baselines.values()
    )
    assert fine.faithful == faithful and fine.sanity_passed == (spearman < 0.5)
    again = LayerChoice.from_json(choice.to_json())
    assert again == choice
    table = layer_choice_display(choice).text()
    assert list(table.index) == ["body", "body.5", "body.3"]
    assert table.loc["body.3", "grid"] == "12×12"
    assert table.loc[choice.chosen, "chosen"] == "✓"
    assert (table["chosen"] == "✓").sum() == 1


def test_one_candidate_is_used_and_said(cnn: CamNet) -> None:
    choice = choose_layer(cnn, lambda rows: torch.zeros(0), np.array([0]), 48, candidates=["body"])
    assert choice.chosen == "body" and choice.reason == "the model has one candidate layer"
    assert choice.candidates == () and choice.method == "gradcam" and choice.seed == 0
    seeded = choose_layer(
        cnn, lambda rows: torch.zeros(0), np.array([0]), 48, candidates=["body"], seed=5
    )
    assert seeded.seed == 5


def test_the_sample_is_seeded_without_repeats_and_the_sanity_check_takes_16_by_default(
    cnn: CamNet,
) -> None:
    images = torch.randn(10, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    targets = np.arange(18) % 3
    asked: list[np.ndarray] = []

    def images_for(rows: np.ndarray) -> torch.Tensor:
        asked.append(rows)
        return images[rows % 10]

    runs, walls = [], []
    for _ in range(2):
        started = time.perf_counter()
        runs.append(
            choose_layer(
                cnn, images_for, targets, 48, candidates=["body", "body.5"], sample_n=17, steps=2
            )
        )
        walls.append(time.perf_counter() - started)
    # the recorded seconds are this comparison's duration, not a clock reading
    assert all(0 < run.seconds <= wall + 0.01 for run, wall in zip(runs, walls, strict=True))
    assert len(set(asked[0].tolist())) == 17
    np.testing.assert_array_equal(asked[0], asked[1])  # the same seed, the same sample
    assert runs[0] == replace(runs[1], seconds=runs[0].seconds)
    assert (runs[0].seed, runs[0].sample_size, runs[0].sanity_size) == (0, 17, 16)


def test_a_transformer_s_candidates_are_scored_with_patch_placement() -> None:
    from cam_core.modelling.architectures import to_classifier
    from tests.test_tokens import small_vit

    net, _ = to_classifier(small_vit(layers=3, seed=4), check_size=64)
    net.eval()
    images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    targets = np.array([0, 1, 2, 0])
    choice = choose_layer(net, lambda rows: images[rows], targets, 64, "gradcam", steps=3)
    assert len(choice.candidates) >= 2
    last = choice.candidates[0]
    own = torch.as_tensor(targets)[:, None]
    maps = get_method("gradcam").explain(net, images, last.layer, own).numpy()[:, 0]
    curves = shared_perturbation_curves(net, images, {"m": maps}, targets, 3, placement="patches")
    assert last.deletion_auc == pytest.approx(float(curves["m"].deletion_auc.mean()))
    assert last.insertion_auc == pytest.approx(float(curves["m"].insertion_auc.mean()))


def test_methods_that_read_no_chosen_layer_are_refused(cnn: CamNet) -> None:
    for name, words in (("cam", "reads no chosen layer"), ("rollout", "does not apply")):
        with pytest.raises(MethodError, match=words):
            choose_layer(cnn, lambda rows: torch.zeros(0), np.array([0]), 48, name)
    with pytest.raises(MethodError, match="no image"):
        choose_layer(cnn, lambda rows: torch.zeros(0), np.array([], dtype=int), 48)
    with pytest.raises(MethodError, match="no layer 'body.99'"):
        images = torch.randn(2, 3, 48, 48)
        choose_layer(
            cnn, lambda rows: images[rows], np.array([0, 1]), 48, candidates=["body", "body.99"]
        )


def test_the_margin_is_insertion_minus_deletion() -> None:
    assert math.isclose(_score("body", 0.2, 0.7, True, True).margin, 0.5)
    assert math.isclose(_score("body", 0.6, 0.4, True, True).margin, -0.2)


def test_a_choice_is_plain_json_and_reads_back_from_older_manifests() -> None:
    import json

    wide = LayerScore(
        layer="body.6",
        grid=(3, 5),
        deletion_auc=0.2,
        insertion_auc=0.7,
        baselines={"centre": {"deletion_auc": 0.4, "insertion_auc": 0.6}},
        randomization_spearman=0.1,
        faithful=True,
        sanity_passed=True,
    )
    choice = LayerChoice("gradcam", "body.6", "the only candidate", candidates=(wide,))
    raw = choice.to_json()
    assert json.loads(json.dumps(raw)) == raw  # lists, not tuples: a re-read manifest is equal
    again = LayerChoice.from_json(raw)
    assert again == choice and again.candidates[0].grid == (3, 5)
    assert again.score_of("body.6") == wide and again.score_of("body.7") is None
    older = {key: value for key, value in wide.to_json().items() if key != "baselines"}
    assert LayerScore.from_json(older).baselines == {}
    minimal = {"method": "gradcam", "chosen": "body", "reason": "r"}
    assert LayerChoice.from_json(minimal) == LayerChoice("gradcam", "body", "r")
