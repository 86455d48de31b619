"""The quality suite on a tiny model, and the verdicts drawn from its figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from cam_core.evaluation.suite import QualityConfig, assess, quality_table, scores_of, verdicts
from cam_core.methods import get_method
from cam_core.modelling.models import CamNet, build_body


def test_assess_scores_methods_and_baselines_on_a_sample() -> None:
    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 2).eval()
    images = torch.randn(7, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    maps = {
        name: get_method(name).explain(net, images, "body").numpy() for name in ("cam", "gradcam")
    }
    targets = np.array([0, 1, 0, 1, 0, 1, 0])
    masks: list[np.ndarray | None] = [np.zeros((48, 48), bool) for _ in range(7)]
    for mask in masks[:-1]:
        assert mask is not None
        mask[:24, :24] = True
    masks[-1] = None
    asked: list[list[int]] = []

    def images_for(rows: np.ndarray) -> torch.Tensor:
        asked.append(rows.tolist())
        return images[rows]

    cfg = QualityConfig(sample_n=5, sanity_n=3, steps=4, seed=1)
    result = assess(
        net, maps, {}, {"cam": "body", "gradcam": "body"}, targets, masks, images_for, 48, cfg
    )
    assert len(asked) == 1 and len(asked[0]) == 5 and asked[0] == sorted(asked[0])
    for name in ("cam", "gradcam", "random", "centre"):
        assert np.isnan(result.columns[f"pointing_hit.{name}"][-1])
        assert np.isfinite(result.columns[f"pointing_hit.{name}"][:-1]).all()
        assert int(np.isfinite(result.columns[f"deletion_auc.{name}"]).sum()) == 5
        assert set(result.quality[name]) >= {"pointing_game", "deletion_auc", "insertion_auc"}
    assert "randomization_spearman" in result.quality["cam"]
    assert "randomization_spearman" not in result.quality["random"]
    assert result.evaluation["sample_size"] == 5 and result.evaluation["sanity_size"] == 3
    again = assess(
        net, maps, {}, {"cam": "body", "gradcam": "body"}, targets, masks, images_for, 48, cfg
    )
    assert again.quality == result.quality  # seeded throughout


def test_verdicts_compare_with_both_baselines() -> None:
    quality = {
        "good": {"deletion_auc": 0.2, "insertion_auc": 0.9, "randomization_spearman": 0.1},
        "half": {"deletion_auc": 0.2, "insertion_auc": 0.6, "randomization_spearman": 0.9},
        "unscored": {"pointing_game": 1.0},
        "random": {"deletion_auc": 0.5, "insertion_auc": 0.5},
        "centre": {"deletion_auc": 0.4, "insertion_auc": 0.7},
    }
    judged = verdicts(quality)
    assert judged["good"] == {"faithful": True, "sanity_passed": True}
    assert judged["half"] == {"faithful": False, "sanity_passed": False}
    assert judged["unscored"] == {"faithful": None, "sanity_passed": None}
    assert "random" not in judged
    table = quality_table(quality)
    assert list(table.index) == list(quality)
    assert table.loc["good", "faithful"] is True and table.loc["centre", "sanity"] is None


def test_scores_of_one_row() -> None:
    row = pd.Series({"pointing_hit.cam": 1.0, "deletion_auc.cam": np.nan})
    scores = scores_of(row.to_dict(), "cam")
    assert scores["pointing_game"] == 1.0
    assert math.isnan(scores["deletion_auc"]) and math.isnan(scores["insertion_auc"])


def test_the_evidence_sample_is_sized_by_its_price() -> None:
    """Each sampled image costs 2 + 2 * (steps - 1) passes per map; the sample shrinks until
    the passes fit max_cost per analysed image, never below min_sample."""
    cfg = QualityConfig(sample_n=256, steps=16, max_cost=16.0, min_sample=6)
    per_image = 2 + 6 * 2 * 15  # four methods and two baselines: 182 passes
    assert cfg.sample_size(64, 6) == 6  # 16 * 64 // 182 = 5, raised to the floor
    assert QualityConfig().sample_size(64, 6) == 6  # the defaults
    assert cfg.sample_size(1500, 6) == 16 * 1500 // per_image == 131
    assert cfg.sample_size(10_000, 6) == 256
    assert cfg.sample_size(5, 6) == 5
    assert QualityConfig(max_cost=None).sample_size(1500, 6) == 256
    assert QualityConfig(max_cost=None).sample_size(100, 6) == 100
    with pytest.raises(ValueError, match="max_cost"):
        QualityConfig(max_cost=0)
