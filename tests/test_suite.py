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


def test_assess_figures_equal_the_metrics_computed_directly_row_by_row() -> None:
    """Targets differ between rows (and from the first rows'), so a figure computed against the
    wrong class, or written to the wrong row, shows."""
    from cam_core.evaluation.baselines import baseline_maps
    from cam_core.evaluation.faithfulness import perturbation_curves
    from cam_core.evaluation.localisation import energy_in_mask, map_peaks, pointing_hits
    from cam_core.evaluation.sanity import randomization_spearman

    torch.manual_seed(1)
    net = CamNet(build_body("democnn2"), 3).eval()
    n, size = 9, 48
    images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(2))
    every = get_method("cam").explain(net, images, "body").numpy()  # (n, 3, h, w)
    targets = np.array([2, 0, 1, 1, 2, 0, 2, 1, 0])
    masks: list[np.ndarray | None] = []
    for i in range(n):
        mask = np.zeros((size, size), bool)
        mask[(i % 3) * 16 : (i % 3) * 16 + 16, :30] = True
        masks.append(mask)
    cfg = QualityConfig(sample_n=5, sanity_n=3, steps=4, seed=3, max_cost=None)
    result = assess(
        net, {"cam": every}, {}, {"cam": "body"}, targets, masks, lambda r: images[r], size, cfg
    )
    own = every[np.arange(n), targets]
    sample = np.sort(np.random.default_rng(3).choice(n, size=5, replace=False))
    for name, single in (("cam", own), ("random", baseline_maps("random", n, *own.shape[1:], 3))):
        hits = pointing_hits(map_peaks(single, size), masks, size)
        np.testing.assert_array_equal(result.columns[f"pointing_hit.{name}"], hits)
        energy = energy_in_mask(single, masks)
        np.testing.assert_allclose(result.columns[f"energy_in_mask.{name}"], energy)
        curves = perturbation_curves(net, images[sample], single[sample], targets[sample], 4)
        deletion = result.columns[f"deletion_auc.{name}"]
        np.testing.assert_allclose(deletion[sample], curves.deletion_auc, atol=1e-6)
        insertion = result.columns[f"insertion_auc.{name}"]
        np.testing.assert_allclose(insertion[sample], curves.insertion_auc, atol=1e-6)
        assert np.isnan(np.delete(deletion, sample)).all()
        figures = result.quality[name]
        assert figures["pointing_game"] == pytest.approx(hits.mean())
        assert figures["energy_in_mask"] == pytest.approx(energy.mean())
        assert figures["deletion_auc"] == pytest.approx(curves.deletion_auc.mean(), abs=1e-6)
        assert figures["insertion_auc"] == pytest.approx(curves.insertion_auc.mean(), abs=1e-6)
    # the same curves against the predicted class instead would differ: the check can fail
    wrong = perturbation_curves(net, images[sample], own[sample], (targets[sample] + 1) % 3, 4)
    assert not np.allclose(result.columns["deletion_auc.cam"][sample], wrong.deletion_auc)
    sane = sample[:3]
    stages = randomization_spearman(
        get_method("cam"), net, images[sane], own[sane], targets[sane], "body", 3
    )
    assert result.quality["cam"]["randomization_spearman"] == stages["head+last block"]
    assert result.quality["cam"]["randomization_spearman_head"] == stages["head"]
    assert result.evaluation["sample_size"] == 5 and result.evaluation["sanity_size"] == 3
    assert result.evaluation["target"] == "true class" and result.evaluation["seed"] == 3
    assert result.evaluation["baselines"] == ["random", "centre"]
    assert result.evaluation["sanity_threshold"] == 0.5
    assert result.evaluation["deletion_baseline"].startswith("gaussian blur")
    assert set(result.seconds) == {
        "localisation",
        "decoding the sample",
        "deletion/insertion",
        "sanity check",
    }


def test_assess_without_masks_has_no_localisation_and_budget_maps_are_read_by_slot() -> None:
    torch.manual_seed(0)
    net = CamNet(build_body("democnn2"), 3).eval()
    images = torch.randn(4, 3, 48, 48, generator=torch.Generator().manual_seed(5))
    every = get_method("cam").explain(net, images, "body").numpy()
    targets = np.array([1, 2, 0, 2])
    # a budget of two slots per image whose order differs per row
    slots = np.array([[1, 0], [0, 2], [2, 0], [2, 1]])
    held = np.stack([every[i, slots[i]] for i in range(4)])
    cfg = QualityConfig(sample_n=4, sanity_n=2, steps=3, max_cost=None)

    def scored(maps: np.ndarray, slots: dict) -> object:
        return assess(
            net,
            {"gradcam": maps},
            slots,
            {"gradcam": "body"},
            targets,
            None,
            lambda r: images[r],
            48,
            cfg,
        )

    direct = scored(every, {})
    budget = scored(held, {"gradcam": slots})
    assert not any(key.startswith(("pointing_hit", "energy_in_mask")) for key in direct.columns)
    np.testing.assert_allclose(
        budget.columns["deletion_auc.gradcam"], direct.columns["deletion_auc.gradcam"], atol=1e-6
    )
    assert "localisation" not in direct.seconds


def test_quality_per_class_and_settings_checks() -> None:
    from cam_core.evaluation.suite import quality_by_class

    table = pd.DataFrame(
        {
            "label": ["dog", "cat", "dog", "cat", "dog"],
            "pointing_hit.cam": [1.0, 0.0, 0.0, 1.0, np.nan],
            "deletion_auc.cam": [0.2, np.nan, 0.4, 0.3, np.nan],
            "insertion_auc.gradcam": [0.9] * 5,
        }
    )
    by_class = quality_by_class(table, "cam")
    assert list(by_class.index) == ["dog", "cat"] and by_class.index.name == "class"
    assert list(by_class.columns) == ["pointing_game", "deletion_auc", "n"]
    assert by_class.loc["dog", "pointing_game"] == 0.5 and by_class.loc["cat", "n"] == 2
    assert by_class.loc["dog", "deletion_auc"] == pytest.approx(0.3)
    assert by_class.loc["dog", "n"] == 3
    for name in ("sample_n", "sanity_n", "steps", "batch_size", "min_sample"):
        with pytest.raises(ValueError, match=name):
            QualityConfig(**{name: 0})
        QualityConfig(**{name: 1})
    with pytest.raises(ValueError, match="max_cost"):
        QualityConfig(max_cost=-1.0)
    assert QualityConfig(max_cost=0.5).sample_size(100, 6) == 6
    table = quality_table({"cam": {"deletion_auc": 0.2, "insertion_auc": 0.8}})
    assert list(table.columns) == ["deletion_auc", "insertion_auc", "faithful", "sanity"]
    assert table.index.name == "method" and table.loc["cam", "faithful"] is None


def test_verdicts_on_their_edges_and_in_any_order() -> None:
    quality = {
        "random": {"deletion_auc": 0.5, "insertion_auc": 0.5},
        "tie": {"deletion_auc": 0.4, "insertion_auc": 0.9, "randomization_spearman": 0.5},
        "worse_deletion": {"deletion_auc": 0.45, "insertion_auc": 0.9},
        "tie_insertion": {"deletion_auc": 0.1, "insertion_auc": 0.7},
        "centre": {"deletion_auc": 0.4, "insertion_auc": 0.7},
        "good": {"deletion_auc": 0.1, "insertion_auc": 0.9, "randomization_spearman": 0.49},
    }
    judged = verdicts(quality)
    assert set(judged) == {"tie", "worse_deletion", "tie_insertion", "good"}
    assert judged["tie"] == {"faithful": False, "sanity_passed": False}  # ties are no wins
    assert judged["worse_deletion"]["faithful"] is False
    assert judged["tie_insertion"]["faithful"] is False
    assert judged["good"] == {"faithful": True, "sanity_passed": True}
    table = quality_table(quality)
    assert list(table.columns) == [
        "deletion_auc",
        "insertion_auc",
        "randomization_spearman",
        "faithful",
        "sanity",
    ]
    assert table.loc["good", "sanity"] is True and table.loc["tie", "sanity"] is False
    assert table.loc["random", "sanity"] is None


def test_means_skip_what_was_not_measured() -> None:
    import math

    from cam_core.evaluation.suite import finite_mean

    assert finite_mean(np.array([1.0, np.nan, 3.0, np.inf])) == 2.0
    assert math.isnan(finite_mean(np.array([np.nan, np.nan]))) and math.isnan(
        finite_mean(np.zeros(0))
    )


def test_the_sample_price_follows_the_steps() -> None:
    # four steps: 2 + 6 maps * 2 * 3 = 38 passes per image; 16 * 64 // 38 = 26
    assert QualityConfig(steps=4).sample_size(64, 6) == 26


def test_assess_passes_on_its_precision_and_placement_and_reports_progress(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The perturbed passes run in the precision asked for (fp32 unless told), a transformer's
    maps are placed on patch centres by every metric, and each stage logs its progress."""
    import contextlib
    import logging

    import cam_core.evaluation.faithfulness as faithfulness
    import cam_core.evaluation.suite as suite
    from cam_core.evaluation.faithfulness import perturbation_passes
    from cam_core.evaluation.localisation import energy_in_mask, map_peaks, pointing_hits
    from cam_core.methods.placement import PATCHES, RECEPTIVE_FIELD

    torch.manual_seed(1)
    net = CamNet(build_body("democnn2"), 3).eval()
    n, size = 6, 48
    images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(2))
    every = get_method("cam").explain(net, images, "body").numpy()
    targets = np.array([2, 0, 1, 1, 2, 0])
    own = every[np.arange(n), targets]
    # each mask is one pixel, where the map peaks with cells on receptive-field centres (half
    # of them) or on patch centres (the other half): a metric placing the cells wrongly misses
    peaks = {
        placement: map_peaks(own, size, placement=placement)
        for placement in (RECEPTIVE_FIELD, PATCHES)
    }
    masks = [np.zeros((size, size), bool) for _ in range(n)]
    for i, mask in enumerate(masks):
        x, y = peaks[RECEPTIVE_FIELD if i % 2 else PATCHES][i]
        mask[y, x] = True
    cfg = QualityConfig(sample_n=4, sanity_n=2, steps=4, seed=3, max_cost=None)
    asked: list[str] = []

    @contextlib.contextmanager
    def recorded(precision: str, device: torch.device):  # type: ignore[no-untyped-def]
        asked.append(precision)
        yield

    monkeypatch.setattr(faithfulness, "autocast", recorded)

    def run(**kwargs):  # type: ignore[no-untyped-def]
        return assess(
            net,
            {"cam": every},
            {},
            {"cam": "body"},
            targets,
            masks,
            lambda r: images[r],
            size,
            cfg,
            **kwargs,
        )

    with caplog.at_level(logging.INFO, logger="cam_core.progress"):
        run()
    assert asked and set(asked) == {"fp32"}
    passes = perturbation_passes(4, 3, 4)  # cam and the two baselines
    assert f"deletion/insertion: {passes}/{passes} images (100%" in caplog.text
    assert "sanity check: 1/1 methods (100%" in caplog.text
    asked.clear()
    run(precision="bf16")
    assert asked and set(asked) == {"bf16"}
    monkeypatch.setattr(suite, "placement_of", lambda _net: PATCHES)
    patched = run()
    hits = pointing_hits(peaks[PATCHES], masks, size)
    np.testing.assert_array_equal(patched.columns["pointing_hit.cam"], hits)
    assert not np.array_equal(hits, pointing_hits(peaks[RECEPTIVE_FIELD], masks, size))
    energy = energy_in_mask(own, masks, PATCHES)
    np.testing.assert_allclose(patched.columns["energy_in_mask.cam"], energy)
    assert not np.allclose(energy, energy_in_mask(own, masks))
    sample = np.isfinite(patched.columns["deletion_auc.cam"])
    curves = faithfulness.perturbation_curves(
        net, images[sample], own[sample], targets[sample], 4, placement=PATCHES
    )
    np.testing.assert_allclose(
        patched.columns["deletion_auc.cam"][sample], curves.deletion_auc, atol=1e-6
    )
