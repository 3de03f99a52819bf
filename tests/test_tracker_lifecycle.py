"""Tracker: lifecycle transitions, det_index, IoU stage, ids, parameters, missing embeddings."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import Detections, IdCounter, Track, Tracker, TrackState
from tracker.synthetic import random_unit_vectors


def _up(tracker, *args, **kwargs):
    """One update; its TrackerUpdate is kept as ``tracker.last`` for the assertions that follow."""
    tracker.last = tracker.update(*args, **kwargs)
    return tracker.last.tracks

EMB = random_unit_vectors(8, 512, np.random.default_rng(42))


def _dets(boxes, emb_rows=None, det_index=None, no_embedding=False):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    embedding = None
    if not no_embedding:
        embedding = EMB[list(range(n)) if emb_rows is None else list(emb_rows)].reshape(n, -1)
    return Detections(xyxy=boxes, confidence=np.full(n, 0.9), embedding=embedding, det_index=det_index)


BOX = [100, 100, 150, 160]
EMPTY = Detections.empty(512)


def test_tentative_then_confirmed_after_n_init_hits():
    tr = Tracker(n_init=3)
    states = []
    for _ in range(4):
        (track,) = _up(tr, _dets([BOX]))
        states.append(track.state)
    assert states == [TrackState.TENTATIVE, TrackState.TENTATIVE, TrackState.CONFIRMED, TrackState.CONFIRMED]
    assert track.hits == 4 and track.age == 4 and track.time_since_update == 0
    assert track.is_confirmed() and not track.is_tentative()


def test_n_init_one_confirms_at_once():
    (track,) = Tracker(n_init=1).update(_dets([BOX])).tracks
    assert track.is_confirmed()


def test_tentative_track_deleted_on_first_miss():
    tr = Tracker(n_init=3)
    (track,) = _up(tr, _dets([BOX]))
    assert _up(tr, EMPTY) == []
    assert track.state == TrackState.DELETED
    assert tr.last.ended_ids == [track.track_id] and tr.last.lost_ids == []


def test_confirmed_track_coasts_max_age_frames_then_goes_to_lost_buffer():
    tr = Tracker(n_init=2, max_age=5)
    for _ in range(2):
        (track,) = _up(tr, _dets([BOX]))
    assert track.is_confirmed()
    for miss in range(1, 6):
        assert _up(tr, EMPTY) == [track], miss
        assert track.time_since_update == miss and track.det_index is None
        assert tr.last.lost_ids == [] and tr.last.ended_ids == []
    assert _up(tr, EMPTY) == []
    assert tr.last.lost_ids == [track.track_id] and tr.last.ended_ids == []
    assert track.state == TrackState.LOST and tr.lost_tracks == [track]


def test_lost_track_expires_after_lost_max_age():
    tr = Tracker(n_init=1, max_age=1, lost_max_age=3)
    (track,) = _up(tr, _dets([BOX]))
    _up(tr, EMPTY)
    _up(tr, EMPTY)
    assert tr.last.lost_ids == [track.track_id]
    _up(tr, EMPTY)
    _up(tr, EMPTY)
    assert tr.last.ended_ids == []
    _up(tr, EMPTY)
    assert tr.last.ended_ids == [track.track_id] and tr.lost_tracks == []
    assert track.state == TrackState.DELETED


def test_lost_buffer_bounded_in_count_drops_oldest():
    tr = Tracker(n_init=1, max_age=1, lost_buffer_size=2)
    for i in range(3):  # three faces, each seen once and lost one frame apart
        _up(tr, _dets([[100 + 200 * i, 100, 150 + 200 * i, 160]], emb_rows=[i]))
    for _ in range(3):
        _up(tr, EMPTY)
    assert len(tr.lost_tracks) == 2
    assert [t.track_id for t in tr.lost_tracks] == [2, 3]
    assert 1 not in tr.metric.samples  # its features were freed too


def test_lost_buffer_disabled_ends_tracks():
    tr = Tracker(n_init=1, max_age=1, lost_buffer_size=0)
    (track,) = _up(tr, _dets([BOX]))
    _up(tr, EMPTY)
    _up(tr, EMPTY)
    assert tr.last.lost_ids == [] and tr.last.ended_ids == [track.track_id]


def test_det_index_maps_each_track_to_its_detection():
    tr = Tracker(n_init=1)
    boxes = [[0, 0, 50, 60], [300, 0, 350, 60], [600, 0, 650, 60]]
    tracks = _up(tr, _dets(boxes, det_index=[7, 3, 5]))
    by_id = {t.track_id: t.det_index for t in tracks}
    assert by_id == {1: 7, 2: 3, 3: 5}
    # Next frame: the detector lists them in another order, a subset only.
    dets = _dets([boxes[2], boxes[0]], emb_rows=[2, 0], det_index=[0, 4])
    tracks = _up(tr, dets)
    assert {t.track_id: t.det_index for t in tracks} == {1: 4, 2: None, 3: 0}
    for t in tracks:
        if t.det_index is not None:
            row = int(np.flatnonzero(dets.det_index == t.det_index)[0])
            np.testing.assert_allclose(t.to_xyxy(), dets.xyxy[row], atol=1e-3)


def test_iou_stage_matches_tentative_tracks_without_appearance():
    # Tentative tracks are not in the cascade: a new face whose embedding changes
    # completely (different random vector) is still followed by IoU.
    tr = Tracker(n_init=3)
    (t1,) = _up(tr, _dets([BOX], emb_rows=[0]))
    (t2,) = _up(tr, _dets([[102, 100, 152, 160]], emb_rows=[1]))
    assert t1 is t2 and t2.hits == 2


def test_iou_stage_respects_max_iou_distance():
    tr = Tracker(n_init=3, max_iou_distance=0.3)
    _up(tr, _dets([[0, 0, 100, 100]], emb_rows=[0]))
    # IoU 0.54 -> cost 0.46 > 0.3; another face, so appearance cannot link them either
    tracks = _up(tr, _dets([[30, 0, 130, 100]], emb_rows=[1]))
    assert len(tracks) == 1 and tracks[0].track_id == 2 and tr.last.ended_ids == [1]


def test_confirmed_track_with_different_appearance_is_not_matched_by_cascade():
    tr = Tracker(n_init=1, max_age=5)
    (t,) = _up(tr, _dets([BOX], emb_rows=[0]))
    _up(tr, EMPTY)
    _up(tr, EMPTY)  # time_since_update 2: not in the IoU stage
    tracks = _up(tr, _dets([BOX], emb_rows=[1]))  # same place, another face
    assert t.time_since_update == 3
    assert {x.track_id for x in tracks} == {1, 2}


def test_missing_embedding_uses_motion_only():
    tr = Tracker(n_init=2)
    _up(tr, _dets([BOX]))
    _up(tr, _dets([BOX]))
    (t,) = _up(tr, _dets([[103, 100, 153, 160]], no_embedding=True))
    assert t.track_id == 1 and t.time_since_update == 0
    _up(tr, EMPTY)  # even after a miss, IoU still finds it when embeddings are absent
    _up(tr, Detections(xyxy=np.zeros((0, 4)), confidence=np.zeros(0)))
    (t,) = _up(tr, _dets([[106, 100, 156, 160]], no_embedding=True))
    assert t.track_id == 1 and t.time_since_update == 0
    # Back to embeddings: features learnt before are still used.
    (t,) = _up(tr, _dets([[108, 100, 158, 160]]))
    assert t.track_id == 1


def test_revived_flag_only_on_the_frame_of_revival():
    tr = Tracker(n_init=1, max_age=1)
    _up(tr, _dets([BOX]))
    for _ in range(3):
        _up(tr, EMPTY)
    assert tr.last.lost_ids == [] and [t.track_id for t in tr.lost_tracks] == [1]
    (t,) = _up(tr, _dets([[500, 300, 560, 370]]))  # far away, same face
    assert t.track_id == 1 and t.revived and t.is_confirmed() and tr.last.revived_ids == [1]
    (t,) = _up(tr, _dets([[501, 300, 561, 370]]))
    assert t.track_id == 1 and not t.revived


def test_reid_threshold_is_stricter():
    rng = np.random.default_rng(5)
    tr = Tracker(n_init=1, max_age=1, max_cosine_distance=0.5, reid_max_cosine_distance=0.2)
    _up(tr, _dets([BOX]))
    for _ in range(3):
        _up(tr, EMPTY)
    # A new face at cosine distance ~0.3 from the lost one: within the cascade threshold but
    # not the re-id threshold, so it starts a new track.
    noise = rng.normal(size=512)
    noise -= (noise @ EMB[0]) * EMB[0]
    noise /= np.linalg.norm(noise)
    cos = 0.7
    e = cos * EMB[0] + np.sqrt(1 - cos**2) * noise
    d = Detections(xyxy=[BOX], confidence=[0.9], embedding=e[None].astype(np.float32))
    (t,) = _up(tr, d)
    assert t.track_id == 2 and not t.revived


def test_ids_unique_and_counter_per_tracker():
    a, b = Tracker(n_init=1), Tracker(n_init=1)
    ids_a = [t.track_id for t in _up(a, _dets([[0, 0, 10, 10], [50, 0, 60, 10]]))]
    for _ in range(3):
        _up(b, _dets([[0, 0, 10, 10], [50, 0, 60, 10], [90, 0, 100, 10]]))
    ids_a += [t.track_id for t in _up(a, _dets([[0, 0, 10, 10], [50, 0, 60, 10], [300, 300, 330, 340]]))]
    # Tracker b's activity does not advance a's counter.
    assert sorted(set(ids_a)) == [1, 2, 3]


def test_shared_counter_keeps_two_trackers_disjoint():
    counter = IdCounter()
    a, b = Tracker(n_init=1, id_counter=counter), Tracker(n_init=1, id_counter=counter)
    ids_a = {t.track_id for t in _up(a, _dets([[0, 0, 10, 10], [50, 0, 60, 10]]))}
    ids_b = {t.track_id for t in _up(b, _dets([[0, 0, 10, 10], [50, 0, 60, 10]]))}
    assert ids_a.isdisjoint(ids_b)
    b.reset()  # a shared counter is not restarted
    assert not ids_a & {t.track_id for t in _up(b, _dets([[0, 0, 10, 10]]))}


def test_reset_forgets_everything_and_reports_ended_ids():
    tr = Tracker(n_init=1, max_age=1)
    _up(tr, _dets([BOX, [300, 0, 350, 60]]))
    _up(tr, _dets([BOX]))
    _up(tr, _dets([BOX]))  # track 2 is now in the lost buffer
    assert [t.track_id for t in tr.lost_tracks] == [2]
    assert sorted(tr.reset().ended_ids) == [1, 2]
    assert tr.tracks == [] and tr.lost_tracks == [] and tr.metric.samples == {}
    (t,) = _up(tr, _dets([BOX]))
    assert t.track_id == 1 and not t.revived  # own counter restarts; nothing to revive


def test_update_rejects_non_detections():
    with pytest.raises(TypeError):
        Tracker().update(np.zeros((1, 4)))


def test_empty_frames_are_fine():
    tr = Tracker()
    assert _up(tr, EMPTY) == []
    assert _up(tr, Detections.empty()) == []


@pytest.mark.parametrize(
    "name, value",
    [
        ("max_cosine_distance", 0), ("max_cosine_distance", 2.5), ("max_cosine_distance", "0.3"),
        ("reid_max_cosine_distance", -0.1), ("reid_max_cosine_distance", float("nan")),
        ("budget", 0), ("budget", 2.5), ("budget", True),
        ("max_iou_distance", 0), ("max_iou_distance", 1.5),
        ("max_age", 0), ("max_age", -3), ("n_init", 0), ("n_init", 1.0),
        ("gating_only_position", "yes"),
        ("lost_buffer_size", -1), ("lost_max_age", -1), ("lost_max_age", 2.0),
        ("std_weight_position", 0), ("std_weight_velocity", -1),
        ("kalman_filter", "kf"), ("metric", object()), ("id_counter", 5),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        Tracker(**{name: value})


def test_track_repr_and_boxes():
    tr = Tracker(n_init=1)
    (t,) = _up(tr, _dets([BOX]))
    assert isinstance(t, Track) and "id=1" in repr(t)
    np.testing.assert_allclose(t.to_xyxy(), BOX, atol=1e-4)


@pytest.mark.parametrize("only_position, same_track", [(False, False), (True, True)])
def test_gating_only_position_ignores_size_changes(only_position, same_track):
    # reid_min_confidence 1: no appearance-only re-identification, the gate decides.
    tr = Tracker(n_init=1, gating_only_position=only_position, reid_min_confidence=1.0)
    for _ in range(5):
        _up(tr, _dets([BOX]))
    # Same centre, twice the size (IoU 0.25, so the IoU stage cannot match it either).
    cx, cy = (BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2
    big = [cx - 50, cy - 60, cx + 50, cy + 60]
    tracks = _up(tr, _dets([big]))
    matched = [t.track_id for t in tracks if t.time_since_update == 0]
    assert (matched == [1]) is same_track
