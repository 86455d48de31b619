"""The randomisation check: which maps follow the model's parameters."""

from __future__ import annotations

import numpy as np
import torch

from cam_core.evaluation.sanity import randomised_models, randomization_spearman, rank_correlation
from cam_core.methods import get_method
from cam_core.modelling.models import CamNet, build_body


def test_rank_correlation() -> None:
    a = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    assert np.isclose(rank_correlation(a, a * 3 + 1)[0], 1.0)
    assert np.isclose(rank_correlation(a, -a)[0], -1.0)
    assert rank_correlation(a, np.ones_like(a))[0] == 0.0


def test_randomised_copies_leave_the_original_alone() -> None:
    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 2).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    stages = [(name, copy.state_dict()) for name, copy in randomised_models(net, seed=3)]
    assert [name for name, _ in stages] == ["head", "head+last block"]
    head_only = dict(stages[0][1])
    assert not torch.equal(head_only["head.2.weight"], before["head.2.weight"])
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_cam_maps_change_when_the_model_is_randomised() -> None:
    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 2).eval()
    images = torch.randn(6, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    targets = np.array([0, 1, 0, 1, 0, 1])
    cam = get_method("cam")
    maps = cam.explain(net, images, "body").numpy()[np.arange(6), targets]
    stages = randomization_spearman(cam, net, images, maps, targets, "body", seed=1)
    assert set(stages) == {"head", "head+last block"}
    assert stages["head+last block"] < 0.5
    same = randomization_spearman(cam, net, images, maps, targets, "body", seed=1)
    assert same == stages  # seeded


def test_rank_correlation_row_by_row_equals_scipy() -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    first = rng.random((4, 3, 5))
    second = first + rng.random((4, 3, 5)) * np.array([0.01, 0.3, 1.0, 5.0])[:, None, None]
    second[3] += 10.0  # rows differ in level too
    got = rank_correlation(first, second)
    expected = [spearmanr(f.ravel(), s.ravel())[0] for f, s in zip(first, second, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    pair = np.array([[[0.0, 1.0]], [[1.0, 0.0]]])
    np.testing.assert_allclose(rank_correlation(pair, pair[::-1]), [-1.0, -1.0])


def _stamped_net() -> CamNet:
    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 3).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(0.5, 1.0)
            module.running_var.uniform_(2.0, 3.0)
    return net


def test_the_cascade_resets_the_head_then_the_last_body_block_and_nothing_else() -> None:
    net = _stamped_net()
    before = net.state_dict()
    stages = dict(randomised_models(net))  # the same copy, after both stages
    changed = {
        key
        for key, value in stages["head+last block"].state_dict().items()
        if not torch.equal(value, before[key])
    }
    assert "head.2.weight" in changed
    assert {key.split(".")[1] for key in changed if key.startswith("body.")} == {"6"}
    assert all(key.startswith(("head.", "body.6.")) for key in changed)
    last = stages["head+last block"].body[6]
    norms = [m for m in last.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(torch.all(m.running_mean == 0) for m in norms)
    assert all(torch.all(m.running_var == 1) for m in norms)
    again = dict(randomised_models(net, seed=0))
    assert torch.equal(again["head"].head[2].weight, stages["head"].head[2].weight)


def test_a_model_without_a_body_attribute_randomises_its_last_block_before_the_head() -> None:
    from cam_core.evaluation.sanity import _head_and_last_block

    plain = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    head, block = _head_and_last_block(plain)
    assert head is plain[5] and block is plain[2]
    grouped = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()),
        torch.nn.Sequential(
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)
        ),
    )
    head, block = _head_and_last_block(grouped)
    assert head is grouped[1][2] and block is grouped[0]  # not the block holding the head
    net = _stamped_net()
    head, block = _head_and_last_block(net)
    assert head is net.head[2] and block is net.body[6]


def test_spearman_compares_the_maps_of_each_image_s_own_class() -> None:
    from cam_core.evaluation.sanity import randomised_models as cascade

    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 3).eval()
    images = torch.randn(5, 3, 48, 48, generator=torch.Generator().manual_seed(4))
    targets = np.array([2, 0, 1, 2, 1])
    cam = get_method("cam")
    maps = cam.explain(net, images, "body").numpy()[np.arange(5), targets]
    stages = randomization_spearman(cam, net, images, maps, targets, "body")
    seeded = randomization_spearman(cam, net, images, maps, targets, "body", seed=5)
    for stage, randomised in cascade(net, 5):
        after = cam.explain(randomised, images, "body").numpy()[np.arange(5), targets]
        assert seeded[stage] == float(np.median(rank_correlation(maps, after)))
    for stage, randomised in cascade(net, 0):
        after = cam.explain(randomised, images, "body").numpy()[np.arange(5), targets]
        assert stages[stage] == float(np.median(rank_correlation(maps, after)))
        assert stages[stage] != 0.0  # maps that vary: another class's would not agree


def test_a_transformer_randomises_its_head_and_its_last_block() -> None:
    from cam_core.evaluation.sanity import _head_and_last_block
    from cam_core.methods.tokens import token_layout
    from cam_core.modelling.architectures import to_classifier
    from tests.test_tokens import small_vit

    net, _ = to_classifier(small_vit(layers=3), check_size=64)
    head, block = _head_and_last_block(net)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert head is linears[-1] and head.out_features == 3  # the classifier, not an MLP layer
    layout = token_layout(net)
    assert layout is not None and len(layout.blocks) == 3
    assert block is net.get_submodule(layout.blocks[2])  # the last of three blocks
    assert block is not net.get_submodule(layout.blocks[1])
