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
