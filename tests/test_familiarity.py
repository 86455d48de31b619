"""Familiarity: kNN scores against a reference, the conformal threshold, percentiles, energy."""

from __future__ import annotations

import numpy as np
import pytest

from cam_core.evaluation.familiarity import (
    FamiliarityIndex,
    FamiliarityRecord,
    energy_scores,
    less_familiar_than,
    normalised,
    unfamiliar_threshold,
)

CENTRES = np.random.default_rng(0).standard_normal((4, 32)) * 3


def _clusters(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return CENTRES[rng.integers(0, 4, n)] + rng.standard_normal((n, 32)) * 0.3


def test_images_far_from_the_reference_score_lower_and_a_rebuilt_index_agrees() -> None:
    reference = _clusters(300, 0)
    index, own = FamiliarityIndex.fit(reference)
    assert own.shape == (300,) and np.all((own > 0) & (own <= 1))
    near = _clusters(50, 1)
    far = np.random.default_rng(2).standard_normal((50, 32)) * 3
    assert index.score(near).min() > index.score(far).max()
    rebuilt = FamiliarityIndex(reference, index.k, index.scale)
    np.testing.assert_allclose(rebuilt.score(far), index.score(far), rtol=1e-9)
    # Scale invariance: the features are L2-normalised first.
    np.testing.assert_allclose(index.score(near * 7.0), index.score(near), rtol=1e-4)


def test_leave_one_out_does_not_count_an_image_as_its_own_neighbour() -> None:
    reference = _clusters(100, 3)
    index, own = FamiliarityIndex.fit(reference)
    as_query = index.score(reference)  # here each image finds itself at distance 0
    assert np.all(as_query >= own - 1e-12) and np.mean(as_query > own) > 0.9


def test_the_threshold_is_the_conformal_quantile() -> None:
    scores = np.arange(1, 101, dtype=float) / 100  # 100 distinct scores, 0.01 .. 1.00
    threshold = unfamiliar_threshold(scores, 0.95)
    assert threshold == 0.05  # floor(101 * 0.05) = 5th lowest
    assert int((scores < threshold).sum()) == 4
    assert unfamiliar_threshold(scores[:10], 0.95) == float("-inf")  # too few to flag any
    with pytest.raises(ValueError, match="no validation images"):
        unfamiliar_threshold(np.zeros(0))


def test_less_familiar_than_counts_the_more_familiar_validation_images() -> None:
    valid = np.array([0.1, 0.2, 0.3, 0.4])
    shown = less_familiar_than(np.array([0.05, 0.2, 0.35, 0.9]), valid)
    np.testing.assert_allclose(shown, [100.0, 50.0, 25.0, 0.0])
    assert np.isnan(less_familiar_than(np.array([0.5]), np.zeros(0))).all()


def test_energy_is_minus_logsumexp() -> None:
    logits = np.array([[0.0, 0.0], [10.0, -10.0], [1000.0, 999.0]])
    np.testing.assert_allclose(
        energy_scores(logits),
        [-np.log(2), -10.0 - np.log1p(np.exp(-20)), -1000 - np.log1p(np.exp(-1))],
    )


def test_normalised_rows_and_the_record_round_trip() -> None:
    rows = normalised(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    record = FamiliarityRecord("training images", 120, 10, 0.01, 0.95, 0.3)
    assert FamiliarityRecord.from_json(record.to_json()) == record and record.available
    assert not FamiliarityRecord("", note="no reference").available
    with pytest.raises(ValueError, match="at least 2 reference images"):
        FamiliarityIndex.fit(np.ones((1, 3)))


def test_k_never_exceeds_the_other_reference_images() -> None:
    reference = _clusters(5, 4)
    assert FamiliarityIndex(reference, 10, 0.1).k == 4
    index, own = FamiliarityIndex.fit(reference, 10)
    assert index.k == 4 and own.shape == (5,)


def test_single_rows_and_empty_inputs() -> None:
    np.testing.assert_allclose(energy_scores(np.array([[2.0, 0.0]])), [-2.0 - np.log1p(np.exp(-2))])
    assert energy_scores(np.zeros((0, 3))).shape == (0,)
    np.testing.assert_allclose(
        less_familiar_than(np.array([0.1, 0.7]), np.array([0.5])), [100.0, 0.0]
    )
    rows = normalised(np.array([[0.3, 0.4], [6.0, 8.0], [0.0, 0.001]]))
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.6, 0.8], [0.0, 1.0]], rtol=1e-6)


def _mean_knn_cosine(
    query: np.ndarray, reference: np.ndarray, k: int, skip_self: bool
) -> np.ndarray:
    q, r = normalised(query).astype(np.float64), normalised(reference).astype(np.float64)
    distances = np.sort(1.0 - q @ r.T, axis=1)
    return distances[:, 1 : k + 1].mean(axis=1) if skip_self else distances[:, :k].mean(axis=1)


def test_scores_are_exp_of_the_mean_distance_to_k_neighbours_over_the_fitted_scale() -> None:
    reference = _clusters(40, 5)
    index, own = FamiliarityIndex.fit(reference, k=3)
    assert index.k == 3
    loo = _mean_knn_cosine(reference, reference, 3, skip_self=True)
    assert index.scale == pytest.approx(np.median(loo), rel=1e-4)
    np.testing.assert_allclose(own, np.exp(-loo / index.scale), rtol=1e-4, atol=1e-6)
    query = _clusters(1, 6)  # one image is scored too
    expected = np.exp(-_mean_knn_cosine(query, reference, 3, skip_self=False) / index.scale)
    np.testing.assert_allclose(index.score(query), expected, rtol=1e-4)
    assert index.score(query[:0]).shape == (0,)
    rebuilt = FamiliarityIndex(reference, 3, index.scale)
    np.testing.assert_allclose(rebuilt.score(query), expected, rtol=1e-4)


def test_two_reference_images_are_enough_and_the_scale_must_be_positive() -> None:
    two = _clusters(2, 7)
    index, own = FamiliarityIndex.fit(two, k=5)
    assert index.k == 1 and own.shape == (2,)
    assert FamiliarityIndex(two, 1, 0.5).k == 1
    with pytest.raises(ValueError, match="positive"):
        FamiliarityIndex(two, 1, 0.0)
    with pytest.raises(ValueError, match="at least 2 reference images"):
        FamiliarityIndex(two[:1], 1, 0.5)


def test_the_threshold_index_on_its_edges() -> None:
    # (19 + 1) * 0.05 = 1 exactly: the lowest score; (38 + 1) * 0.05 = 1.95: still the lowest
    scores = np.arange(1, 40, dtype=float)
    assert unfamiliar_threshold(scores[:19], 0.95) == 1.0
    assert unfamiliar_threshold(scores[:38], 0.95) == 1.0
    assert unfamiliar_threshold(scores[:39], 0.95) == 2.0
    assert unfamiliar_threshold(scores[:18], 0.95) == float("-inf")


def test_a_record_reads_every_field_and_defaults_missing_ones() -> None:
    record = FamiliarityRecord("analysed images (leave-one-out)", 7, 3, 0.25, 0.9, 0.4, "a note")
    assert FamiliarityRecord.from_json(record.to_json()) == record
    assert FamiliarityRecord.from_json({}) == FamiliarityRecord("")
    assert FamiliarityRecord.from_json({}).k == 10 and not FamiliarityRecord.from_json({}).available


def test_energy_is_computed_in_float64_from_float32_logits() -> None:
    logits = np.array([[30000.0, 30000.5]], dtype=np.float32)
    energy = energy_scores(logits)
    assert energy.dtype == np.float64
    assert energy[0] == pytest.approx(-(30000.5 + np.log1p(np.exp(-0.5))), abs=1e-9)
