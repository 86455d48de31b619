"""The shortcut finder on models whose evidence is known: one reads a corner mark, one reads
the object; real demo runs are checked in test_reliance.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from cam_core.errors import PreprocessingError
from cam_core.evaluation.shortcuts import (
    CausalResult,
    ShortcutConfig,
    ShortcutSearch,
    Verdict,
    check_preprocessing,
    find_shortcuts,
    flips_exceed,
    wilson_interval,
)

SIZE, CELLS = 48, 6
CORNER = (40, 48)  # the mark: rows and columns 40..47


class _Reader(nn.Module):
    """Class 1's logit grows with the red of a fixed square of the image; class 0 is constant."""

    def __init__(self, rows: slice, cols: slice) -> None:
        super().__init__()
        self.rows, self.cols = rows, cols
        self.scale = nn.Parameter(torch.tensor(12.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = x[:, 0, self.rows, self.cols].mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(red), self.scale * (red - 0.5)], dim=1)


def _world(
    n: int = 120,
    mark_on_class1: bool = True,
    seed: int = 0,
    centred: bool = False,
    on_the_mark: int = 0,
) -> tuple[torch.Tensor, np.ndarray, list[np.ndarray]]:
    """Images (grey noise, an "object" square somewhere in the middle, or in the centre, and
    for class 1 a red corner mark), labels, and masks of the object; the first
    ``on_the_mark`` class-1 images have their object over the corner instead."""
    rng = np.random.default_rng(seed)
    images = torch.full((n, 3, SIZE, SIZE), 0.3) + 0.05 * torch.from_numpy(
        rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    )
    labels = np.arange(n) % 2
    masks = []
    for i in range(n):
        y, x = (18, 18) if centred else rng.integers(8, 24, size=2)
        if labels[i] == 1 and i // 2 < on_the_mark:
            y, x = 34, 34
        images[i, :, y : y + 12, x : x + 12] = 0.6
        if labels[i] == 1:
            images[i, 0, y : y + 12, x : x + 12] = 1.0  # the object is red for class 1
            if mark_on_class1:
                images[i, 0, CORNER[0] : CORNER[1], CORNER[0] : CORNER[1]] = 1.0
        mask = np.zeros((SIZE, SIZE), bool)
        mask[y : y + 12, x : x + 12] = True
        masks.append(mask)
    return images, labels, masks


def _maps(images: torch.Tensor, labels: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Maps ``(N, 2, 6, 6)``: class 1's light up where the reader reads, class 0's are noise."""
    rng = np.random.default_rng(1)
    maps = rng.uniform(0.0, 0.2, (len(images), 2, CELLS, CELLS)).astype(np.float32)
    centres = np.arange(CELLS) * (SIZE // CELLS)  # cell i sits on pixel 8 i (placement)
    down = (centres >= rows.start) & (centres < rows.stop)
    across = (centres >= cols.start) & (centres < cols.stop)
    maps[:, 1] = np.where(np.outer(down, across), 1.0, maps[:, 1])
    return maps


def _search(
    reader: _Reader,
    images: torch.Tensor,
    labels: np.ndarray,
    masks: list[np.ndarray] | None,
    maps: np.ndarray | None = None,
    cfg: ShortcutConfig | None = None,
) -> list:
    net = reader.eval()
    with torch.no_grad():
        probs = torch.softmax(net(images), dim=1).numpy()
    if maps is None:
        maps = _maps(images, labels, reader.rows, reader.cols)
    return find_shortcuts(
        net,
        maps,
        None,
        labels,
        probs,
        ("plain", "marked"),
        lambda rows: images[torch.as_tensor(np.asarray(rows))],
        None if masks is None else (lambda rows: np.stack([masks[i] for i in rows])),
        cfg or ShortcutConfig(sample_n=60, min_images=10, bootstrap=500),
    )


def test_a_corner_mark_the_model_reads_is_the_top_shortcut() -> None:
    images, labels, masks = _world(on_the_mark=6)
    corner = slice(*CORNER)
    findings = _search(_Reader(corner, corner), images, labels, masks)
    assert len(findings) == 4  # two regions per class
    top = findings[0]
    assert top.class_name == "marked"
    assert top.verdict is Verdict.SHORTCUT
    x0, y0, x1, y1 = top.box
    assert x1 == pytest.approx(1.0) and y1 == pytest.approx(1.0) and x0 > 0.6 and y0 > 0.6
    assert top.off_object == pytest.approx(54 / 60)  # six objects lie over the mark
    assert top.removal is not None and top.removal.significant
    assert top.removal.n == 54  # ... and are left out of the tests
    assert top.removal.accuracy_drop is not None and top.removal.accuracy_drop > 0.5
    assert top.transplant is not None and top.transplant.effect > 0.9
    assert top.transplant.control < 0.1  # the same corner from "plain" images flips nothing
    assert top.rows and set(top.rows) == set(range(len(labels)))  # every map peaks there
    assert [f for f in findings if f.verdict is Verdict.SHORTCUT] == [top]


def test_a_model_that_reads_the_object_has_no_shortcut() -> None:
    images, labels, masks = _world(mark_on_class1=False, centred=True)
    middle = slice(18, 30)
    findings = _search(_Reader(middle, middle), images, labels, masks)
    assert not [f for f in findings if f.verdict is Verdict.SHORTCUT]
    marked = [f for f in findings if f.class_name == "marked"]
    assert any(f.verdict is Verdict.OBJECT for f in marked)


def test_without_masks_a_region_only_one_class_looks_at_is_still_found() -> None:
    images, labels, _ = _world()
    corner = slice(*CORNER)
    maps = _maps(images, labels, corner, corner)
    maps[labels == 0, 0, 2, 2] = 1.0  # plain images' own maps look at the middle
    findings = _search(_Reader(corner, corner), images, labels, None, maps)
    assert findings[0].class_name == "marked" and findings[0].verdict is Verdict.SHORTCUT
    assert findings[0].off_object is None and findings[0].specificity > 3


def test_without_masks_a_centred_object_every_class_looks_at_is_no_shortcut() -> None:
    images, labels, _ = _world(mark_on_class1=False, centred=True)
    middle = slice(18, 30)
    maps = _maps(images, labels, middle, middle)
    maps[:, 0] = maps[:, 1]  # every class's maps look at the centred object
    findings = _search(_Reader(middle, middle), images, labels, None, maps)
    assert not [f for f in findings if f.verdict is Verdict.SHORTCUT]
    assert any(f.verdict is Verdict.COMMON and f.specificity < 1.5 for f in findings)


def test_a_transplant_counts_only_beyond_both_intervals_and_the_minimum() -> None:
    assert flips_exceed(18, 0, 20, 0.05)
    assert not flips_exceed(2, 0, 20, 0.05)  # 10 points more, but the intervals overlap
    assert not flips_exceed(60, 40, 400, 0.1)  # beyond chance, below the minimum
    assert flips_exceed(60, 20, 400, 0.1)
    assert not flips_exceed(0, 0, 0, 0.05)


def test_a_class_with_too_few_images_is_never_a_finding() -> None:
    images, labels, masks = _world(n=16)
    corner = slice(*CORNER)
    findings = _search(_Reader(corner, corner), images, labels, masks)
    assert findings and all(f.verdict is Verdict.TOO_FEW for f in findings)
    assert all(f.removal is None and f.transplant is None for f in findings)


def test_the_search_reads_back_from_its_manifest_block() -> None:
    images, labels, masks = _world()
    corner = slice(*CORNER)
    findings = _search(_Reader(corner, corner), images, labels, masks)
    search = ShortcutSearch("cam", tuple(findings), {"sample_n": 60}, True, 1.5)
    again = ShortcutSearch.from_json(search.to_json())
    assert again == search
    assert again.shortcuts == (findings[0],)


def test_wilson_interval() -> None:
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == 1.0


@pytest.mark.parametrize(
    ("mean", "std"), [((0.5, 0.5), (0.2, 0.2)), ((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))]
)
def test_preprocessing_that_cannot_be_reproduced_is_refused(
    mean: tuple[float, ...], std: tuple[float, ...]
) -> None:
    with pytest.raises(PreprocessingError, match="cannot be reproduced"):
        check_preprocessing(mean, std)
    check_preprocessing((0.5, 0.5, 0.5), (0.2, 0.2, 0.2))


def test_a_peak_one_cell_from_the_border_gives_a_region_that_reaches_it() -> None:
    images, labels, masks = _world()
    rng = np.random.default_rng(2)
    maps = rng.uniform(0.0, 0.2, (len(images), 2, 12, 12)).astype(np.float32)
    maps[:, 1, 10, 10] = 1.0  # zero padding pulls the peak one cell inwards of the mark
    corner = slice(*CORNER)
    top = _search(_Reader(corner, corner), images, labels, masks, maps)[0]
    assert top.class_name == "marked" and top.verdict is Verdict.SHORTCUT
    assert top.box[2:] == (1.0, 1.0) and top.box[0] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("cell", "expected"), [((10, 10), (0.75, 0.75, 1.0, 1.0)), ((2, 2), (0.0, 0.0, 0.25, 0.25))]
)
def test_regions_near_either_border_reach_it(
    cell: tuple[int, int], expected: tuple[float, ...]
) -> None:
    from cam_core.evaluation.shortcuts import _regions

    mean_map = np.full((12, 12), 0.001)
    mean_map[cell] = 1.0
    (box,) = _regions(mean_map, 1 / 6, 1)
    assert box == pytest.approx(expected)


def test_only_the_most_concentrated_candidates_are_tested_when_there_are_many() -> None:
    images, labels, _ = _world()
    corner = slice(*CORNER)
    cfg = ShortcutConfig(sample_n=60, min_images=10, bootstrap=500, max_candidates=1)
    findings = _search(_Reader(corner, corner), images, labels, None, cfg=cfg)
    assert [(f.class_name, f.box[2:]) for f in findings] == [("marked", (1.0, 1.0))]
    with pytest.raises(ValueError, match="max_candidates"):
        ShortcutConfig(max_candidates=0)


def test_wilson_interval_by_the_formula_and_flips_on_the_edges() -> None:
    import math

    from cam_core.evaluation.shortcuts import flips_exceed

    z = 1.96
    for successes, n in ((3, 10), (0, 7), (7, 7), (50, 200)):
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low, high = wilson_interval(successes, n)
        assert low == pytest.approx(max(0.0, centre - half)) and high == pytest.approx(
            min(1.0, centre + half)
        )
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    # 40 of 100 flipped against 5 of 100: beyond both intervals and the minimum
    assert flips_exceed(40, 5, 100, 0.05)
    assert not flips_exceed(40, 5, 100, 0.36)  # the effect, 0.35, is under the minimum
    assert flips_exceed(40, 5, 100, 0.35)  # exactly the minimum counts
    assert not flips_exceed(12, 5, 100, 0.05)  # the intervals overlap
    assert not flips_exceed(3, 0, 0, 0.0)


def test_log_odds_stay_finite_for_confident_predictions() -> None:
    from cam_core.evaluation.shortcuts import _log_odds

    probs = np.array([[0.7, 0.2, 0.1], [1 - 1e-20, 5e-21, 5e-21]])
    log_probs = np.log(probs)
    got = _log_odds(log_probs, 0)
    assert got[0] == pytest.approx(np.log(0.7 / 0.3))
    assert got[1] == pytest.approx(np.log((1 - 1e-20) / 1e-20), rel=1e-6)
    assert _log_odds(log_probs, 2)[0] == pytest.approx(np.log(0.1 / 0.9))


def test_bootstrap_interval_of_the_mean() -> None:
    from cam_core.evaluation.shortcuts import _bootstrap_interval

    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    low, high = _bootstrap_interval(values, 4000, np.random.default_rng(0))
    assert low < values.mean() < high and 1.0 <= low and high <= 10.0
    assert _bootstrap_interval(np.full(6, 2.5), 100, np.random.default_rng(0)) == (2.5, 2.5)
    assert _bootstrap_interval(np.zeros(0), 100, np.random.default_rng(0)) == (0.0, 0.0)


def test_class_map_means_stream_normalised_maps_per_class() -> None:
    from cam_core.evaluation.shortcuts import ClassMapMeans

    means = ClassMapMeans(3, (2, 2))
    maps = np.array(
        [
            [[1.0, 0.0], [0.0, 3.0]],  # class 0: normalised to .25/.75, peak at 3
            [[-5.0, 2.0], [2.0, 0.0]],  # class 1: negatives ignored, peak at 1
            [[0.0, 0.0], [0.0, 0.0]],  # class 1: no positive mass, skipped
            [[2.0, 2.0], [0.0, 0.0]],  # class 0
        ]
    )
    masks = np.array([[[1.0, 1.0], [1.0, 0.0]]] * 4)
    means.update(maps[:2], np.array([0, 1]), masks[:2])
    means.update(maps[2:], np.array([1, 0]), masks[2:])
    assert means.counts.tolist() == [2, 1, 0]
    np.testing.assert_allclose(means.mean_map(0), [[0.375, 0.25], [0.0, 0.375]])
    np.testing.assert_allclose(means.mean_map(1), [[0.0, 0.5], [0.5, 0.0]])
    np.testing.assert_allclose(means.mean_map(2), np.zeros((2, 2)))
    assert means.peaks == [[3, 0], [1], []]
    assert means.off_mass[0] == pytest.approx([0.75, 0.0]) and means.off_mass[1] == [0.0]
    plain = ClassMapMeans(2, (2, 2))
    plain.update(maps[:1], np.array([0]))
    assert plain.off_mass == [[], []]


def test_region_geometry() -> None:
    from cam_core.evaluation.shortcuts import _cells, _edges, _on_object, _overlap, _pixels, _snap

    np.testing.assert_allclose(_edges(4), [0.0, 0.125, 0.375, 0.625, 1.0])
    assert _snap(0.2, 0.25) == 0.0 and _snap(0.25, 0.25) == 0.0 and _snap(0.3, 0.25) == 0.3
    assert _snap(0.75, 0.25) == 1.0 and _snap(0.7, 0.25) == 0.7
    assert _overlap((0, 0, 0.5, 0.5), (0.25, 0.25, 1, 1)) == pytest.approx(0.0625)
    assert _overlap((0, 0, 0.5, 0.5), (0.5, 0, 1, 1)) == 0.0
    assert _overlap((0, 0, 0.2, 0.2), (0.5, 0.5, 1, 1)) == 0.0
    cells = _cells((0.0, 0.0, 0.375, 1.0), 2, 4)  # the first two columns' parts, whole height
    np.testing.assert_allclose(cells, [[1, 1, 0, 0], [1, 1, 0, 0]])
    half = _cells((0.0, 0.0, 0.25, 0.5), 2, 4)
    # rows' parts are [0, 0.25] and [0.25, 1]: the box covers a third of the second
    np.testing.assert_allclose(half, [[1, 0.5, 0, 0], [1 / 3, 1 / 6, 0, 0]])
    assert _pixels((0.1, 0.2, 0.5, 0.9), 100) == (10, 20, 50, 90)
    assert _pixels((0.5, 0.5, 0.5, 0.5), 10) == (5, 5, 6, 6)
    objects = np.array([np.ones((2, 4)), np.zeros((2, 4)), np.tile([1.0, 0, 0, 0], (2, 1))])
    np.testing.assert_allclose(_on_object(objects, (0.0, 0.0, 0.375, 1.0)), [1.0, 0.0, 0.5])


def test_a_finding_reads_back_from_json_with_its_tests() -> None:
    from cam_core.evaluation.shortcuts import CausalResult, ShortcutFinding, ShortcutSearch, Verdict

    removal = CausalResult(0.3, (0.2, 0.4), 0.05, (0.0, 0.1), 40, True, 0.25, 1.5, 0.1)
    transplant = CausalResult(0.5, (0.4, 0.6), 0.02, (0.0, 0.05), 40, True)
    finding = ShortcutFinding(
        "cat",
        (0.0, 0.0, 0.25, 0.25),
        4.0,
        5.0,
        0.8,
        0.9,
        0.7,
        removal,
        transplant,
        Verdict.SHORTCUT,
        (3, 1),
        ((0.5, 0.5),),
    )
    assert finding.strength == pytest.approx(0.48)
    assert ShortcutFinding.from_json(finding.to_json()) == finding
    bare = ShortcutFinding(
        "dog", (0.5, 0.5, 1.0, 1.0), 1.0, 1.0, 0.1, None, None, None, None, Verdict.TOO_FEW
    )
    assert bare.strength == 0.0 and ShortcutFinding.from_json(bare.to_json()) == bare
    search = ShortcutSearch("gradcam", (finding, bare), {"seed": 1}, True, 2.5, "")
    assert ShortcutSearch.from_json(search.to_json()) == search
    assert search.shortcuts == (finding,)
    assert ShortcutSearch.from_json({}) == ShortcutSearch()
    import json

    # through a JSON file, as the manifest stores them
    stored = json.loads(json.dumps(finding.to_json()))
    assert ShortcutFinding.from_json(stored) == finding
    skipped = ShortcutSearch("gradcam", (finding,), {}, True, 1.0, "no masks and no map")
    assert ShortcutSearch.from_json(json.loads(json.dumps(skipped.to_json()))) == skipped
    older = {k: v for k, v in stored.items() if k not in ("rows", "mean_map")}
    assert ShortcutFinding.from_json(older) == replace(finding, rows=(), mean_map=())


@pytest.mark.parametrize(
    "settings",
    [
        {"region": 0.0},
        {"region": 0.51},
        {"sample_n": 1},
        {"min_images": 1},
        {"per_class": 0},
        {"max_candidates": 0},
    ],
)
def test_search_settings_are_checked(settings: dict) -> None:
    with pytest.raises(ValueError):
        ShortcutConfig(**settings)
    ShortcutConfig(region=0.5, sample_n=2, min_images=2, per_class=1, max_candidates=1)


class _CornerReader(nn.Module):
    """Class 1's logit: the mean of channel 0 over the top-left quarter-side corner, plus 240 ×
    the mean of channel 0 elsewhere (so a control place filled with the image's mean raises
    it by a known amount), plus 10 × channel 1's bottom-right pixel; class 0's is 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = x.shape[-1] // 4
        corner = x[:, 0, :side, :side].sum(dim=(1, 2))
        elsewhere = (x[:, 0].sum(dim=(1, 2)) - corner) / (x.shape[-1] ** 2 - side**2)
        one = corner / side**2 + 240 * elsewhere + 10 * x[:, 1, -1, -1]
        return torch.stack([torch.full_like(one, 0.5), self.gain * one], dim=1)


TOP_LEFT = (0.0, 0.0, 0.25, 0.25)


def _cornered(values: list[float], side: int = 16) -> torch.Tensor:
    """Images whose channel 0 is ``value`` on the corner and 0 elsewhere."""
    x = torch.zeros(len(values), 3, side, side, dtype=torch.float64)
    for i, value in enumerate(values):
        x[i, 0, : side // 4, : side // 4] = value
    return x


def _tester(images: torch.Tensor, true_idx: np.ndarray, cfg: ShortcutConfig) -> object:
    from cam_core.evaluation.shortcuts import _Tester

    net = _CornerReader()
    with torch.no_grad():
        probs = torch.softmax(net(images), dim=1).numpy()
    return _Tester(net, lambda rows: images[rows], None, probs, true_idx, cfg)


def test_removal_figures_are_the_drops_of_the_class_s_probability_and_log_odds() -> None:
    # 16×16 images, channel 0 = c on the 4×4 corner and 0 elsewhere (image mean c / 16).
    # Filling the corner with the mean: class 1's logit goes from c to c / 16. Filling a
    # control place (16 pixels off the corner) with it: the rest's mean rises by c / 240, the
    # logit by c (to 2c). The verdict reads the drop beyond the control: 15c/16 + c = 31c/16.
    beyond = np.array([1.5, 0.8, 1.2, 0.9, 1.1])
    c = beyond * 16 / 31
    tester = _tester(_cornered(list(c)), np.ones(5, int), ShortcutConfig(bootstrap=400, seed=3))
    result = tester.removal(1, TOP_LEFT, np.arange(5))  # type: ignore[attr-defined]

    def p(logit: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(0.5 - logit))

    assert result.n == 5
    assert result.effect == pytest.approx(float((p(c) - p(c / 16)).mean()))
    assert result.interval[0] <= result.effect <= result.interval[1]
    assert result.control == pytest.approx(float((p(c) - p(2 * c)).mean()))
    assert result.control_interval[0] <= result.control <= result.control_interval[1]
    assert result.log_odds_drop == pytest.approx(float((15 * c / 16).mean()))
    assert result.log_odds_control == pytest.approx(float(-c.mean()))
    assert result.accuracy_drop == pytest.approx(0.6)  # 3 of 5 have c > 0.5; none after
    # every image drops beyond its control (the bootstrap's low end is above 0, though below
    # 1) and the mean reaches the 1-nat minimum
    assert result.significant
    # the accuracy drop: right before (c > 0.5) and still right after (c / 16 > 0.5)
    tester = _tester(_cornered([9.6, 0.8, 0.2]), np.ones(3, int), ShortcutConfig(bootstrap=50))
    accuracy = tester.removal(1, TOP_LEFT, np.arange(3)).accuracy_drop  # type: ignore[attr-defined]
    assert accuracy == pytest.approx(2 / 3 - 1 / 3)
    # a mean drop that rests on a few images while the others rise is not an effect
    mixed = np.array([7.0, 7.0, 7.0, -2.0, -2.0, -2.0, -2.0, -2.0])
    images = _cornered(list(mixed * 16 / 31))
    tester = _tester(images, np.ones(8, int), ShortcutConfig(bootstrap=400, seed=3))
    result = tester.removal(1, TOP_LEFT, np.arange(8))  # type: ignore[attr-defined]
    assert result.log_odds_drop - result.log_odds_control == pytest.approx(1.375)
    assert result.interval[0] < 0 < result.interval[1] and not result.significant


def test_a_transplant_counts_flips_of_the_images_neither_of_the_class_nor_taken_for_it() -> None:
    # rows 0-3: class 1 with the corner mark; 4-9: class 0 without; 10: class 0 taken for
    # class 1 (by the other pixel the model reads); 11: class 1 without its mark
    images = _cornered([3.0] * 4 + [0.0] * 8)
    images[10, 1, -1, -1] = 1.0
    true_idx = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    tester = _tester(images, true_idx, ShortcutConfig(seed=1))
    result = tester.transplant(1, TOP_LEFT, np.arange(4))  # type: ignore[attr-defined]
    # pasted onto rows 4-9 only; the control pastes the same place from class-0 images
    assert (result.n, result.effect, result.control) == (6, 1.0, 0.0)
    assert result.interval == wilson_interval(6, 6)
    assert result.control_interval == wilson_interval(0, 6)
    assert result.significant
    # nothing to paste onto: every image of another class is taken for the class
    taken = _tester(images, np.array([1] * 10 + [0, 1]), ShortcutConfig(seed=1))
    empty = taken.transplant(1, TOP_LEFT, np.arange(4))  # type: ignore[attr-defined]
    assert empty == CausalResult(0.0, (0.0, 1.0), 0.0, (0.0, 1.0), 0, False)


def test_a_control_place_has_the_region_s_size_inside_the_image_apart_from_it() -> None:
    box = (0.0, 0.05, 0.3, 0.25)  # wider than high
    tester = _tester(_cornered([0.0]), np.ones(1, int), ShortcutConfig(seed=5))
    for _ in range(200):
        x0, y0, x1, y1 = tester._control_box(box, 0)  # type: ignore[attr-defined]
        assert (x1 - x0, y1 - y0) == pytest.approx((0.3, 0.2))
        assert 0 <= x0 and x1 <= 1 and 0 <= y0 and y1 <= 1
        assert x0 >= 0.3 or y1 <= 0.05 or y0 >= 0.25  # apart from the region


def test_samples_and_batches_of_the_causal_tests() -> None:
    images = _cornered([0.1 * i for i in range(7)])
    tester = _tester(images, np.ones(7, int), ShortcutConfig(sample_n=4, batch_size=2, seed=2))
    rows = np.array([6, 2, 5, 0, 3, 1])
    sample = tester._sample(rows)  # type: ignore[attr-defined]
    assert len(sample) == 4 and len(set(sample.tolist())) == 4
    assert set(sample.tolist()) <= set(rows.tolist()) and list(sample) == sorted(sample)
    few = np.array([3, 1])
    assert tester._sample(few) is few  # type: ignore[attr-defined]
    # log-probabilities in batches of 2 equal one pass over all 7; nothing in, nothing out
    expected = torch.log_softmax(_CornerReader()(images), dim=1).detach().numpy()
    np.testing.assert_allclose(tester._log_probs(images), expected)  # type: ignore[attr-defined]
    assert tester._log_probs(images[:0]).shape == (0, 2)  # type: ignore[attr-defined]


def test_concentration_is_mass_over_area_and_object_share_is_per_image() -> None:
    from cam_core.evaluation.shortcuts import _concentration, _on_object

    # cell (i, j) holds the image part nearest its centre: edges 0, .125, .375, .625, 1
    widths = np.diff([0.0, 0.125, 0.375, 0.625, 1.0])
    even = np.outer(widths, widths)  # mass in proportion to area: 1 wherever one looks
    for box in ((0.0, 0.0, 0.5, 0.25), (0.25, 0.5, 1.0, 0.75), (0.5, 0.25, 0.75, 1.0)):
        assert _concentration(even, box) == pytest.approx(1.0)
    peak = np.zeros((4, 4))
    peak[1, 2] = 1.0
    assert _concentration(peak, (0.375, 0.125, 0.625, 0.375)) == pytest.approx(16.0)
    cells = np.zeros((2, 4, 4), dtype=bool)
    cells[1, 1, 2] = True
    shares = _on_object(cells, (0.375, 0.125, 0.625, 0.375))
    np.testing.assert_allclose(shares, [0.0, 1.0])
    # a region smaller than a cell: its share is that of the cell it lies in
    np.testing.assert_allclose(_on_object(cells, (0.45, 0.2, 0.5, 0.25)), [0.0, 1.0])


def test_normalisations_that_are_not_three_channels_are_refused() -> None:
    with pytest.raises(PreprocessingError):
        check_preprocessing((0.5, 0.5), (0.2, 0.2, 0.2))
    with pytest.raises(PreprocessingError):
        check_preprocessing((0.5, 0.5, 0.5), (0.2, 0.2))
    check_preprocessing((0.5, 0.5, 0.5), (0.2, 0.2, 0.2))


def test_the_bootstrap_draws_every_value_and_one_image_gets_an_interval() -> None:
    from cam_core.evaluation.shortcuts import _bootstrap_interval

    low, high = _bootstrap_interval(
        np.array([100.0, 0.0, 0.0, 0.0]), 2000, np.random.default_rng(1)
    )
    assert low == 0.0 and high > 0.0  # the first value is drawn too
    assert wilson_interval(1, 1) == pytest.approx((0.2065, 1.0), abs=1e-4)


def test_class_map_means_sum_float16_maps_in_float64_and_keep_small_totals() -> None:
    from cam_core.evaluation.shortcuts import ClassMapMeans

    # float16 maps, as artifacts store them, whose total is beyond float16 (65504)
    big = np.full((1, 6, 6), 3000.0, np.float16)
    big[0, 0, 0] = 6000.0
    means = ClassMapMeans(2, (6, 6))
    means.update(big, np.array([0]))
    assert means.mean_map(0)[0, 0] == pytest.approx(6000 / (35 * 3000 + 6000))
    # a map whose positive mass is below 1 still counts
    small = np.zeros((1, 6, 6), np.float32)
    small[0, 2, 3] = 0.25
    means.update(small, np.array([1]))
    assert means.counts.tolist() == [1, 1] and means.mean_map(1)[2, 3] == 1.0
    assert means.peaks[1] == [2 * 6 + 3]


def test_regions_follow_the_mean_map_s_ranking_and_sizes() -> None:
    from cam_core.evaluation.shortcuts import _regions

    mean_map = np.full((12, 12), 0.001)
    mean_map[3, 3], mean_map[9, 5], mean_map[6, 9] = 1.0, 0.9, 0.8
    boxes = _regions(mean_map, 1 / 6, 2)  # the two highest cells, in order
    np.testing.assert_allclose(boxes, np.array([(2, 2, 4, 4), (4, 8, 6, 10)]) / 12)
    # a cell two from the right border: its region stops short of the border
    (box,) = _regions(np.where(np.arange(144).reshape(12, 12) == 9 * 12 + 9, 1.0, 0.0), 1 / 6, 1)
    assert box == pytest.approx((8 / 12, 8 / 12, 10 / 12, 10 / 12))
    # only cells with mass give regions
    lone = np.zeros((12, 12))
    lone[5, 5] = 1.0
    assert len(_regions(lone, 1 / 6, 2)) == 1
    # half the image wide at a corner cell: the region is the corner quarter
    corner = np.zeros((12, 12))
    corner[11, 11] = 1.0
    assert _regions(corner, 0.5, 1) == [(0.5, 0.5, 1.0, 1.0)]
    corner = np.zeros((12, 12))
    corner[11, 0] = 1.0
    assert _regions(corner, 0.5, 1) == [(0.0, 0.5, 0.5, 1.0)]


def test_overlap_reads_each_box_s_own_sides() -> None:
    from cam_core.evaluation.shortcuts import _overlap

    assert _overlap((0.1, 0.6, 0.5, 0.9), (0.2, 0.5, 0.8, 1.0)) == pytest.approx(0.09)
    assert _overlap((0.2, 0.5, 0.8, 1.0), (0.1, 0.6, 0.5, 0.9)) == pytest.approx(0.09)


def test_the_same_seed_gives_the_same_tests() -> None:
    images = _cornered([0.5 * i for i in range(12)])
    results = []
    for _ in range(2):
        tester = _tester(
            images, np.ones(12, int), ShortcutConfig(sample_n=6, bootstrap=200, seed=7)
        )
        places = [tester._control_box(TOP_LEFT, 0) for _ in range(5)]  # type: ignore[attr-defined]
        results.append((places, tester.removal(1, TOP_LEFT, np.arange(12))))  # type: ignore[attr-defined]
    assert results[0] == results[1]


def test_a_region_at_most_two_percent_on_the_object_is_off_it() -> None:
    from cam_core.evaluation.shortcuts import _Tester

    cells = np.zeros((3, 4, 4))
    cells[0, 0, 0] = 0.02  # exactly the limit
    cells[1, 0, 0] = 0.021
    box = (0.0, 0.0, 0.125, 0.125)  # the first cell's part of the image
    tester = _Tester(
        _CornerReader(),
        lambda rows: None,
        cells,
        np.zeros((3, 2)),
        np.ones(3, int),
        ShortcutConfig(),
    )  # type: ignore[arg-type,return-value]
    assert tester.off_object_rows(np.arange(3), box).tolist() == [0, 2]


def test_a_removal_whose_interval_touches_zero_is_not_an_effect() -> None:
    # one image's log-odds drop beyond its control is 0, the other's 10: the mean (5) clears
    # the minimum, but a quarter of the resamples draw only the first: the low end is 0
    images = _cornered([0.0, 10 * 16 / 31])
    tester = _tester(images, np.ones(2, int), ShortcutConfig(bootstrap=400, seed=3))
    result = tester.removal(1, TOP_LEFT, np.arange(2))  # type: ignore[attr-defined]
    assert result.log_odds_drop - result.log_odds_control == pytest.approx(5.0)
    assert not result.significant


def test_a_transplant_s_control_counts_its_own_flips() -> None:
    # class-0 donors with the mark (rows 10-15, taken for class 1, so never targets) flip
    # the control too
    images = _cornered([3.0] * 4 + [0.0] * 6 + [3.0] * 6)
    true_idx = np.array([1] * 4 + [0] * 12)
    tester = _tester(images, true_idx, ShortcutConfig(seed=1))
    result = tester.transplant(1, TOP_LEFT, np.arange(4))  # type: ignore[attr-defined]
    flips = round(result.control * result.n)
    assert result.n == 6 and 0 < flips < 6 and result.control == pytest.approx(flips / 6)
    assert result.control_interval == wilson_interval(flips, 6)


def test_cell_masks_are_the_share_of_each_cell_s_pixels_on_the_object() -> None:
    from cam_core.evaluation.shortcuts import _cell_masks

    # 8 px, 8 cells: the parts' pixel edges round to 0, 0, 2, 2, 4, 4, 6, 6, 8; a part of no
    # pixel takes the one pixel at its start
    mask = np.ones((1, 8, 8), bool)
    mask[0, 0, :] = False  # the top row of pixels
    rows = _cell_masks(mask, 8, 8)[0]
    np.testing.assert_allclose(rows[:, 3], [0.0, 0.5, 1, 1, 1, 1, 1, 1])
    cols = _cell_masks(mask.transpose(0, 2, 1), 8, 8)[0]
    np.testing.assert_allclose(cols[3], [0.0, 0.5, 1, 1, 1, 1, 1, 1])
    # 48 px, 6 cells (parts at 0, 4, 12, 20, 28, 36, 48): an object on rows/columns 12..19
    square = np.zeros((1, 48, 48), bool)
    square[0, 12:20, 12:20] = True
    expected = np.zeros((6, 6))
    expected[2, 2] = 1.0
    np.testing.assert_allclose(_cell_masks(square, 6, 6)[0], expected)


def test_the_search_reads_its_maps_in_chunks_as_if_at_once() -> None:
    """More images than one chunk (1,024): the class-mean maps, the object shares and the
    affected rows (at most 1,000) are those of all images at once."""
    from cam_core.evaluation.shortcuts import ClassMapMeans, _cell_masks, _regions

    images, labels, masks = _world(n=1100)
    corner = slice(*CORNER)
    maps = _maps(images, labels, corner, corner)
    cfg = ShortcutConfig(sample_n=40, min_images=10, bootstrap=200)
    findings = _search(_Reader(corner, corner), images, labels, masks, maps, cfg)
    means = ClassMapMeans(2, (CELLS, CELLS))
    means.update(maps[np.arange(1100), labels], labels, _cell_masks(np.stack(masks), CELLS, CELLS))
    for k, name in enumerate(("plain", "marked")):
        found = [f for f in findings if f.class_name == name]
        expected = means.mean_map(k)
        boxes = _regions(expected, cfg.region, cfg.per_class)
        assert sorted(f.box for f in found) == sorted(tuple(round(v, 4) for v in b) for b in boxes)
        for f in found:
            assert f.mean_map == tuple(tuple(round(float(v), 6) for v in row) for row in expected)
            assert f.mass_off_object == pytest.approx(float(np.mean(means.off_mass[k])))
    top = findings[0]
    assert top.class_name == "marked" and top.verdict is Verdict.SHORTCUT
    # every map of class 1 peaks on the mark: the first 1,000 rows are the affected ones
    assert top.rows == tuple(range(1000))


def test_a_class_budget_gives_the_candidates_of_maps_of_every_class() -> None:
    images, labels, _ = _world()
    corner = slice(*CORNER)
    full = _maps(images, labels, corner, corner)
    rows = np.arange(len(labels))
    budget = full[rows, labels][:, None]  # each image keeps its true class's map only
    slots = labels[:, None]
    reader = _Reader(corner, corner).eval()
    with torch.no_grad():
        probs = torch.softmax(reader(images), dim=1).numpy()
    cfg = ShortcutConfig(sample_n=60, min_images=10, bootstrap=500)
    args = (labels, probs, ("plain", "marked"), lambda r: images[torch.as_tensor(np.asarray(r))])
    with_all = find_shortcuts(reader, full, None, *args, cfg=cfg)
    with_budget = find_shortcuts(reader, budget, slots, *args, cfg=cfg)
    assert [(f.class_name, f.box, f.mean_map) for f in with_budget] == [
        (f.class_name, f.box, f.mean_map) for f in with_all
    ]
    top = with_budget[0]
    # the affected rows are the images whose budget holds a map of the class
    assert top.class_name == "marked" and top.rows == tuple(np.flatnonzero(labels == 1))


def test_peak_cells_mark_images_without_a_map_of_the_class_and_read_in_chunks() -> None:
    from cam_core.evaluation.shortcuts import _peak_cells

    maps = np.zeros((3, 1, 2, 2), np.float32)
    maps[0, 0, 1, 0] = 1.0
    maps[1, 0, 0, 1] = -1.0  # all negative but one cell less so: it still peaks
    maps[1, 0] = [[-3.0, -1.0], [-2.0, -4.0]]
    maps[2, 0, 1, 1] = 1.0
    slots = np.array([[1], [1], [0]])
    assert _peak_cells(maps, slots, 1).tolist() == [2, 1, -1]
    assert _peak_cells(maps, slots, 0).tolist() == [-1, -1, 3]
    empty = _peak_cells(np.zeros((0, 2, 2, 2)), None, 0)
    assert empty.shape == (0,) and empty.dtype.kind == "i"
    # more images than a chunk (4,096): image i peaks at cell i % 4
    many = np.zeros((4100, 2, 2, 2), np.float32)
    many[np.arange(4100), 1, (np.arange(4100) % 4) // 2, np.arange(4100) % 2] = 1.0
    assert _peak_cells(many, None, 1).tolist() == [i % 4 for i in range(4100)]


def test_affected_rows_peak_more_than_half_inside_the_region() -> None:
    from cam_core.evaluation.shortcuts import _affected

    inside = np.array([[1.0, 0.5], [0.0, 1.0]])
    peaks = np.array([0, 3, -1, 1, 2])
    assert _affected(peaks, inside) == (0, 1)
    assert _affected(peaks, inside, limit=1) == (0,)
    assert _affected(np.zeros(1001, int), inside) == tuple(range(1000))


def test_the_search_reports_its_progress(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    images, labels, _ = _world()
    corner = slice(*CORNER)
    reader = _Reader(corner, corner).eval()
    with torch.no_grad():
        probs = torch.softmax(reader(images), dim=1).numpy()
    seen: list[tuple[str, float]] = []
    with caplog.at_level(logging.INFO, logger="cam_core.progress"):
        find_shortcuts(
            reader,
            _maps(images, labels, corner, corner),
            None,
            labels,
            probs,
            ("plain", "marked"),
            lambda r: images[torch.as_tensor(np.asarray(r))],
            cfg=ShortcutConfig(sample_n=20, min_images=10, bootstrap=50),
            progress=lambda message, done: seen.append((message, done)),
        )
    assert [done for _, done in seen] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [message for message, _ in seen] == [
        "testing plain's region 1 of 4",
        "testing plain's region 2 of 4",
        "testing marked's region 3 of 4",
        "testing marked's region 4 of 4",
        "shortcut search done",
    ]
    assert "shortcut tests: 4/4 regions (100%" in caplog.text


def test_shortcuts_confirmed_by_both_tests_and_stronger_ones_rank_first() -> None:
    from cam_core.evaluation.shortcuts import ShortcutFinding, _rank

    def finding(name: str, verdict: Verdict, removal: float, both: bool) -> ShortcutFinding:
        test = CausalResult(removal, (0.0, 1.0), 0.0, (0.0, 1.0), 20, True)
        other = CausalResult(0.0, (0.0, 1.0), 0.0, (0.0, 1.0), 20, both)
        box = (0.0, 0.0, 0.5, 0.5)
        return ShortcutFinding(name, box, 1.0, 1.0, 0.5, None, None, test, other, verdict)

    found = [
        finding("weak, one test", Verdict.SHORTCUT, 0.2, False),
        finding("object", Verdict.OBJECT, 0.9, True),
        finding("strong, one test", Verdict.SHORTCUT, 0.6, False),
        finding("weak, both tests", Verdict.SHORTCUT, 0.1, True),
    ]
    assert [f.class_name for f in sorted(found, key=_rank)] == [
        "weak, both tests",
        "strong, one test",
        "weak, one test",
        "object",
    ]


def test_the_mass_off_the_object_is_known_only_with_masks() -> None:
    images, labels, masks = _world()
    corner = slice(*CORNER)
    with_masks = _search(_Reader(corner, corner), images, labels, masks)[0]
    assert with_masks.mass_off_object is not None and with_masks.mass_off_object > 0.5
    without = _search(_Reader(corner, corner), images, labels, None)
    assert all(f.mass_off_object is None for f in without)


def test_a_class_alone_in_the_data_has_specificity_one() -> None:
    images, labels, _ = _world()
    keep = labels == 1
    corner = slice(*CORNER)
    findings = _search(_Reader(corner, corner), images[torch.as_tensor(keep)], labels[keep], None)
    assert findings and all(f.specificity == 1.0 for f in findings)


def test_thresholds_are_met_exactly_on_their_edges() -> None:
    corner = slice(*CORNER)
    # half the marked images have their object over the mark: exactly the off-object share
    images, labels, masks = _world(on_the_mark=30)
    top = _search(_Reader(corner, corner), images, labels, masks)[0]
    assert top.off_object == 0.5 and top.verdict is Verdict.SHORTCUT
    # exactly as many images as the minimum are enough
    images, labels, masks = _world()
    cfg = ShortcutConfig(sample_n=60, min_images=60, bootstrap=500)
    top = _search(_Reader(corner, corner), images, labels, masks, cfg=cfg)[0]
    assert top.removal is not None and top.removal.n == 60 and top.verdict is Verdict.SHORTCUT
    # without masks: every peak in a region of a sixteenth of the image is exactly 16 times
    # its area, and the specificity exactly the one found
    images, labels, _ = _world()
    maps = _maps(images, labels, corner, corner)
    maps[labels == 0, 0, 2, 2] = 1.0
    first = _search(_Reader(corner, corner), images, labels, None, maps)[0]
    assert first.box == (0.75, 0.75, 1.0, 1.0) and first.peak_share == 1.0
    edge = ShortcutConfig(
        sample_n=60, min_images=10, bootstrap=500, consistency=16.0, specificity=first.specificity
    )
    top = _search(_Reader(corner, corner), images, labels, None, maps, edge)[0]
    assert top.class_name == "marked" and top.verdict is Verdict.SHORTCUT
