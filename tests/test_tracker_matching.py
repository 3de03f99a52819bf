"""Assignment, cascade priority, gating, IoU cost and the appearance metric, on small arrays."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import Detections, KalmanFilter, NearestNeighborDistanceMetric, Track
from tracker.appearance import cosine_distance
from tracker.boxes import xyxy_to_xyah
from tracker.matching import INFTY_COST, gating_mask, iou_cost, matching_cascade, min_cost_matching


def _dets(boxes, embedding=None):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return Detections(xyxy=boxes, confidence=np.ones(len(boxes)), embedding=embedding)


def _track(kf, box, track_id, time_since_update=1):
    t = Track(*kf.initiate(xyxy_to_xyah(np.asarray(box, float))), track_id=track_id, n_init=1, max_age=30)
    t.time_since_update = time_since_update
    return t


def _table_cost(table):
    table = np.asarray(table, dtype=float)

    def cost(tracks, detections, track_indices, detection_indices):
        return table[np.ix_(track_indices, detection_indices)]

    return cost


def test_min_cost_matching_is_optimal_and_respects_max_distance():
    kf = KalmanFilter()
    tracks = [_track(kf, [0, 0, 10, 10], i) for i in range(3)]
    dets = _dets([[0, 0, 10, 10]] * 3)
    # Greedy would take (0, 0) = 0.1 and leave worse pairs; optimal is (0,1), (1,0).
    table = [[0.1, 0.2, 9], [0.15, 9, 9], [9, 9, 9]]
    matches, ut, ud = min_cost_matching(_table_cost(table), 0.5, tracks, dets)
    assert sorted(matches) == [(0, 1), (1, 0)]
    assert ut == [2] and ud == [2]


def test_min_cost_matching_treats_inf_as_unmatchable():
    kf = KalmanFilter()
    tracks = [_track(kf, [0, 0, 10, 10], 0)]
    matches, ut, ud = min_cost_matching(_table_cost([[np.inf]]), 0.5, tracks, _dets([[0, 0, 10, 10]]))
    assert matches == [] and ut == [0] and ud == [0]


def test_min_cost_matching_with_nothing_to_match():
    assert min_cost_matching(_table_cost(np.zeros((0, 0))), 0.5, [], _dets(np.zeros((0, 4)))) == ([], [], [])


def test_cascade_gives_the_detection_to_the_most_recent_track():
    kf = KalmanFilter()
    old = _track(kf, [0, 0, 10, 10], 1, time_since_update=5)
    recent = _track(kf, [0, 0, 10, 10], 2, time_since_update=1)
    tracks = [old, recent]
    dets = _dets([[0, 0, 10, 10]])
    # The old track is the better match by cost, but the recent one is matched first.
    matches, ut, ud = matching_cascade(_table_cost([[0.01], [0.3]]), 0.5, 30, tracks, dets)
    assert matches == [(1, 0)] and ut == [0] and ud == []
    # min_cost_matching alone (no cascade) would pick the old track.
    assert min_cost_matching(_table_cost([[0.01], [0.3]]), 0.5, tracks, dets)[0] == [(0, 0)]


def test_cascade_lets_older_tracks_take_what_is_left():
    kf = KalmanFilter()
    tracks = [_track(kf, [0, 0, 10, 10], 1, time_since_update=3), _track(kf, [0, 0, 10, 10], 2, 1)]
    matches, ut, ud = matching_cascade(_table_cost([[0.1, 0.2], [0.1, 0.4]]), 0.5, 30, tracks, _dets([[0, 0, 1, 1]] * 2))
    assert sorted(matches) == [(0, 1), (1, 0)] and ut == [] and ud == []


def test_cascade_depth_excludes_older_tracks():
    kf = KalmanFilter()
    tracks = [_track(kf, [0, 0, 10, 10], 1, time_since_update=6)]
    matches, ut, _ = matching_cascade(_table_cost([[0.0]]), 0.5, 5, tracks, _dets([[0, 0, 10, 10]]))
    assert matches == [] and ut == [0]


def test_gating_mask_gates_far_detections():
    kf = KalmanFilter()
    t = _track(kf, [100, 100, 150, 160], 1)
    t.predict(kf)
    dets = _dets([[101, 100, 151, 160], [400, 100, 450, 160]])
    np.testing.assert_array_equal(gating_mask(kf, [t], dets, [0], [0, 1]), [[True, False]])


def test_iou_cost():
    kf = KalmanFilter()
    tracks = [_track(kf, [0, 0, 10, 10], 1), _track(kf, [100, 100, 110, 110], 2)]
    cost = iou_cost(tracks, _dets([[0, 0, 10, 10], [5, 0, 15, 10]]))
    np.testing.assert_allclose(cost, [[0, 1 - 50 / 150], [1, 1]], atol=1e-9)
    assert iou_cost(tracks, _dets([[0, 0, 10, 10]]), [1], [0]).shape == (1, 1)


def test_cosine_distance():
    a = np.array([[1, 0], [0, 2]], float)
    np.testing.assert_allclose(cosine_distance(a, np.array([[3, 0], [-1, 0]], float)), [[0, 2], [1, 1]], atol=1e-7)


def test_metric_nearest_neighbour_and_budget():
    metric = NearestNeighborDistanceMetric(budget=2)
    e = np.eye(4, dtype=np.float32)
    metric.partial_fit(e[[0, 1]], np.array([7, 7]))
    d = metric.distance(e[[0, 1, 2]], [7])
    np.testing.assert_allclose(d, [[0, 0, 1]], atol=1e-6)  # nearest of both stored features
    metric.partial_fit(e[[2]], np.array([7]))  # budget 2: the oldest (e0) is dropped
    np.testing.assert_allclose(metric.distance(e[[0, 1, 2]], [7]), [[1, 0, 0]], atol=1e-6)
    assert len(metric.samples[7].rows) == 2


def test_metric_unknown_target_is_inf_and_active_targets_prune():
    metric = NearestNeighborDistanceMetric(budget=3)
    e = np.eye(3, dtype=np.float32)
    metric.partial_fit(e, np.array([1, 2, 3]))
    metric.partial_fit(np.zeros((0, 3)), np.zeros(0), active_targets=[1, 3])
    assert not metric.has_samples(2) and metric.has_samples(1)
    d = metric.distance(e, [1, 2, 3])
    assert np.isinf(d[1]).all()
    np.testing.assert_allclose(d[[0, 2]], [[0, 1, 1], [1, 1, 0]], atol=1e-6)


def test_metric_vectorised_distance_equals_per_target_loop():
    rng = np.random.default_rng(0)
    metric = NearestNeighborDistanceMetric(budget=5)
    feats = rng.normal(size=(30, 16)).astype(np.float32)
    targets = rng.integers(0, 6, size=30)
    metric.partial_fit(feats, targets)
    queries = rng.normal(size=(4, 16)).astype(np.float32)
    ids = sorted(metric.samples)
    d = metric.distance(queries, ids)
    for row, t in zip(d, ids):
        np.testing.assert_allclose(row, cosine_distance(metric.samples[t].rows, queries).min(axis=0), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"budget": 0}, "budget"), ({"budget": 1.5}, "budget"), ({"budget": True}, "budget")],
)
def test_metric_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NearestNeighborDistanceMetric(**kwargs)


@pytest.mark.parametrize("density", [0.1, 0.9])
def test_metric_masked_distance_equals_dense_on_the_mask(density):
    rng = np.random.default_rng(1)
    metric = NearestNeighborDistanceMetric(budget=4)
    metric.partial_fit(rng.normal(size=(40, 16)), rng.integers(0, 8, size=40))
    queries = rng.normal(size=(6, 16))
    targets = list(range(9))  # target 8 has no samples
    mask = rng.random((9, 6)) < density
    dense = metric.distance(queries, targets)
    masked = metric.distance(queries, targets, mask=mask)
    np.testing.assert_allclose(masked[mask], dense[mask], atol=1e-6)
    assert np.isinf(masked[~mask]).all()


def test_gating_mask_gates_each_track_on_its_own_state():
    kf = KalmanFilter()
    tracks = [_track(kf, [100, 100, 150, 160], 1), _track(kf, [400, 100, 450, 160], 2)]
    for t in tracks:
        t.predict(kf)
    dets = _dets([[101, 100, 151, 160], [398, 102, 448, 162], [800, 0, 850, 60]])
    mask = gating_mask(kf, tracks, dets, [0, 1], [0, 1, 2])
    np.testing.assert_array_equal(mask, [[True, False, False], [False, True, False]])
