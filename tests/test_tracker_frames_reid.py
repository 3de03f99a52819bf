"""Tracker: ages in frames (``elapsed_frames``), re-identification of young tracks
with all their features (``reid_window``), occluded embeddings not stored
(``occlusion_iou``) and the IoU stage's appearance veto."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import Detections, Tracker
from tracker.synthetic import random_unit_vectors


def _up(tracker, *args, **kwargs):
    """One update; its TrackerUpdate is kept as ``tracker.last`` for the assertions that follow."""
    tracker.last = tracker.update(*args, **kwargs)
    return tracker.last.tracks

EMB = random_unit_vectors(8, 512, np.random.default_rng(7))
EMPTY = Detections.empty(512)


def _dets(boxes, vectors=None):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    emb = None if vectors is None else np.asarray(vectors, np.float32).reshape(len(boxes), -1)
    return Detections(xyxy=boxes, confidence=np.full(len(boxes), 0.9), embedding=emb)


def _near(v, noise, seed):
    """A unit vector at cosine distance about ``noise**2 / 2``... from ``v`` (small noise)."""
    w = v + noise * np.random.default_rng(seed).normal(size=v.shape).astype(np.float32) / np.sqrt(len(v))
    return w / np.linalg.norm(w)


def test_elapsed_frames_count_towards_max_age():
    tr = Tracker(n_init=1, max_age=6)
    (track,) = _up(tr, _dets([[100, 100, 150, 160]], EMB[:1]))
    assert _up(tr, EMPTY, elapsed_frames=3) == [track] and track.time_since_update == 3
    assert _up(tr, EMPTY, elapsed_frames=3) == [track] and track.time_since_update == 6
    assert _up(tr, EMPTY, elapsed_frames=3) == [] and tr.last.lost_ids == [track.track_id]


def test_elapsed_frames_predict_motion_per_frame():
    # A face moving 4 px per frame, detected every third frame: the velocity is
    # learnt per frame and the prediction three frames ahead lands on the face.
    tr = Tracker(n_init=1)
    for k in range(12):
        x = 100 + 4 * 3 * k
        (track,) = _up(tr, _dets([[x, 100, x + 50, 160]], EMB[:1]), elapsed_frames=3 if k else 1)
    assert track.mean[4] == pytest.approx(4.0, abs=0.3)
    _up(tr, EMPTY, elapsed_frames=3)
    assert track.to_xyxy()[0] == pytest.approx(100 + 4 * 3 * 12, abs=2.0)


def test_elapsed_frames_is_validated():
    with pytest.raises(ValueError, match="elapsed_frames"):
        Tracker().update(EMPTY, elapsed_frames=0)


def _lose(tr, box, vector):
    for _ in range(3):
        (track,) = _up(tr, _dets([box], [vector]))
    for _ in range(3):
        _up(tr, EMPTY)
    assert tr.tracks == [] and [t.track_id for t in tr.lost_tracks] == [track.track_id]
    return track.track_id


@pytest.mark.parametrize("reid_window, keeps_id", [(30, True), (0, False)])
def test_young_track_takes_the_lost_id_when_its_later_faces_match(reid_window, keeps_id):
    # The face comes back half visible: its first embedding is far from its
    # stored ones (beyond the re-id threshold), so a new tentative track starts
    # and follows it by IoU. Once its later, clear faces match the lost track,
    # the track continues under the old id.
    tr = Tracker(n_init=2, max_age=2, reid_window=reid_window)
    old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
    box = [400, 200, 450, 260]
    _up(tr, _dets([box], [EMB[5]]))           # poor first view: a new tentative track
    assert tr.last.revived_ids == []
    (track,) = _up(tr, _dets([box], [_near(EMB[0], 0.3, 1)]))
    assert track.is_confirmed()
    assert (track.track_id == old_id) is keeps_id
    if keeps_id:
        assert tr.last.revived_ids == [old_id] and track.revived and tr.lost_tracks == []


def test_young_track_of_another_person_keeps_its_new_id():
    tr = Tracker(n_init=2, max_age=2, reid_window=30)
    old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
    for _ in range(5):
        (track,) = _up(tr, _dets([[400, 200, 450, 260]], [EMB[1]]))
    assert track.track_id != old_id and tr.last.revived_ids == []
    assert [t.track_id for t in tr.lost_tracks] == [old_id]


def test_young_track_takes_over_a_confirmed_track_that_missed_it():
    # The face jumped out of the motion gate: the old track is unmatched while a
    # new one follows the face; on confirmation the old id continues.
    tr = Tracker(n_init=2, max_age=30, reid_max_cosine_distance=0.4, max_cosine_distance=0.01)
    for _ in range(3):
        (old,) = _up(tr, _dets([[100, 100, 150, 160]], [EMB[0]]))
    box = [900, 500, 950, 560]
    # A clear view but beyond max_cosine_distance: no cascade match; step 4b
    # compares it with the confirmed track that missed it this frame.
    _up(tr, _dets([box], [_near(EMB[0], 0.6, 2)]))
    tracks = _up(tr, _dets([box], [_near(EMB[0], 0.6, 3)]))
    assert [t.track_id for t in tracks] == [old.track_id]
    assert tracks[0].to_xyxy()[0] == pytest.approx(900, abs=5)


def test_face_that_jumped_out_of_the_gate_keeps_its_id_on_the_same_frame():
    # Matched on the previous update, the track misses the face that jumped
    # across the frame (no motion gate, no IoU); a confident detection within
    # the re-id distance revives it at once instead of starting a new track.
    tr = Tracker(n_init=2, max_age=30)
    for _ in range(3):
        (old,) = _up(tr, _dets([[100, 100, 150, 160]], [EMB[0]]))
    tracks = _up(tr, _dets([[900, 500, 950, 560]], [_near(EMB[0], 0.3, 4)]))
    assert tracks == [old] and old.time_since_update == 0
    assert old.to_xyxy()[0] == pytest.approx(900, abs=1)


def test_fast_face_keeps_one_tentative_track_until_confirmed():
    # 60 px per frame with a 50 px box: consecutive boxes do not overlap, and a
    # one-box track has no velocity yet, so IoU cannot follow it; a confident
    # detection close in appearance continues the tentative track.
    for confidence, one_track in ((0.9, True), (0.5, False)):
        tr = Tracker(n_init=3, reid_min_confidence=0.75)
        for k in range(3):
            det = Detections(xyxy=np.asarray([[100 + 60 * k, 100, 150 + 60 * k, 160]], np.float32),
                             confidence=np.asarray([confidence]), embedding=_near(EMB[0], 0.3, k)[None])
            tracks = _up(tr, det)
        assert (len(tracks) == 1 and tracks[0].is_confirmed()) is one_track
        assert (tracks[0].track_id == 1) is one_track


def _return_at(tr, old_id, distances, **kw):
    """The lost face comes back elsewhere with features at these distances from it."""
    states = []
    for k, d in enumerate(distances):
        (track,) = _up(tr, _dets([[400 + 2 * k, 200, 450 + 2 * k, 260]], [_at_distance(EMB[0], EMB[3], d)]))
        states.append((track.track_id, track.is_confirmed(), track.held))
    return states


def test_undecided_new_track_is_held_until_it_is_reidentified():
    # Half visible, the returning face is 0.55 from its lost track: beyond the
    # re-id distance, within the hold distance. Held, it is never shown under a
    # new id; its clear view (0.1) hands it the old id.
    tr = Tracker(n_init=2, max_age=2, reid_max_cosine_distance=0.45, hold_cosine_distance=0.65)
    old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
    states = _return_at(tr, old_id, [0.55, 0.55, 0.55, 0.1])
    assert [confirmed for _, confirmed, _ in states] == [False, False, False, True]
    assert [held for _, _, held in states[:3]] == [False, True, True]
    assert states[-1][0] == old_id and tr.last.revived_ids == [old_id]
    # Without holding the same faces are shown under a new id first.
    tr = Tracker(n_init=2, max_age=2, reid_max_cosine_distance=0.45, hold_cosine_distance=0.0)
    old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
    states = _return_at(tr, old_id, [0.55, 0.55, 0.55, 0.1])
    assert states[1][1] and states[1][0] != old_id


def test_held_track_is_shown_as_new_after_hold_max_hits():
    tr = Tracker(n_init=2, max_age=2, hold_cosine_distance=0.65, hold_max_hits=4)
    old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
    states = _return_at(tr, old_id, [0.55] * 5)
    assert [confirmed for _, confirmed, _ in states] == [False, False, False, True, True]
    assert states[-1][0] != old_id and not states[-1][2]
    assert [t.track_id for t in tr.lost_tracks] == [old_id]


def test_face_far_from_every_lost_track_is_not_held():
    tr = Tracker(n_init=2, max_age=2, hold_cosine_distance=0.65)
    _lose(tr, [100, 100, 150, 160], EMB[0])
    states = _return_at(tr, None, [0.9, 0.9])
    assert states[1][1] and not states[1][2]


@pytest.mark.parametrize("hold_min_confidence, held", [(0.75, True), (0.5, False)])
def test_a_low_scoring_new_face_is_held_only_when_its_score_is_below_hold_min_confidence(hold_min_confidence, held):
    # A real small face scores 0.5-0.75: below reid_min_confidence it has no
    # confident feature. Compared by its own feature (score 0.6 >=
    # hold_min_confidence), it is far from the lost track and shown at once;
    # otherwise it waits hold_max_hits hits.
    tr = Tracker(n_init=2, max_age=2, hold_cosine_distance=0.65, reid_min_confidence=0.75,
                 hold_min_confidence=hold_min_confidence)
    _lose(tr, [100, 100, 150, 160], EMB[0])
    for k in range(2):
        (track,) = _up(tr, Detections(xyxy=np.asarray([[400 + 2 * k, 200, 450 + 2 * k, 260]], np.float32),
                                      confidence=np.asarray([0.6], np.float32), embedding=EMB[3:4]))
    assert track.held is held and track.is_confirmed() is not held


def test_embeddings_of_overlapping_detections_are_not_stored():
    tr = Tracker(n_init=1, occlusion_iou=0.3)
    a, b = [100, 100, 160, 160], [110, 100, 170, 160]  # IoU 0.71
    t1, t2 = _up(tr, _dets([a, b], EMB[:2]))
    _up(tr, _dets([a, b], EMB[:2]))
    _up(tr, _dets([a, [300, 100, 360, 160]], EMB[:2]))
    # Only the starting embedding and the one after the faces separated are
    # stored (b jumped away, and is re-identified by its clear view).
    assert tr.metric.samples[t1.track_id].count == 2
    assert tr.metric.samples[t2.track_id].count == 2
    stored_all = Tracker(n_init=1, occlusion_iou=1.0)
    u1, _ = _up(stored_all, _dets([a, b], EMB[:2]))
    _up(stored_all, _dets([a, b], EMB[:2]))
    assert stored_all.metric.samples[u1.track_id].count == 2


def test_appearance_veto_rejects_an_iou_match_of_another_face():
    box = [100, 100, 150, 160]
    for veto, same in ((True, False), (False, True)):
        tr = Tracker(n_init=3, appearance_veto=veto)
        (t1,) = _up(tr, _dets([box], EMB[:1]))
        (t2,) = _up(tr, _dets([box], EMB[1:2]))
        assert (t1 is t2) is same


@pytest.mark.parametrize("name, value", [("occlusion_iou", 0), ("occlusion_iou", 1.5), ("appearance_veto", 1),
                                         ("reid_window", -1), ("reid_window", 2.0),
                                         ("hold_cosine_distance", -0.1), ("hold_cosine_distance", 3),
                                         ("hold_max_hits", 0), ("hold_min_confidence", 1.5)])
def test_new_keywords_are_validated(name, value):
    with pytest.raises(ValueError, match=name):
        Tracker(**{name: value})


def _at_distance(a, b, distance):
    """A unit vector at cosine distance ``distance`` from ``a`` (in the plane of a and b)."""
    b = b - (a @ b) * a
    b /= np.linalg.norm(b)
    c = 1.0 - distance
    return c * a + np.sqrt(1 - c * c) * b


def test_stale_track_after_the_cut_frame_is_held_to_the_reid_threshold():
    # On the cut frame itself a track may match a new shot's face up to
    # max_cosine_distance (another photo of the person); a track still stale
    # afterwards is matched by appearance alone, like a lost track, so it is
    # held to reid_max_cosine_distance (a barely visible face of someone else
    # once took over such a track).
    box = [100, 100, 150, 160]
    for on_cut_frame, same in ((True, True), (False, False)):
        tr = Tracker(n_init=1, max_cosine_distance=0.5, reid_max_cosine_distance=0.3)
        (old,) = _up(tr, _dets([box], EMB[:1]))
        face = _at_distance(EMB[0], EMB[1], 0.4)
        if not on_cut_frame:
            _up(tr, EMPTY, scene_cut=True)
        tracks = _up(tr, _dets([[500, 300, 550, 360]], [face]), scene_cut=on_cut_frame)
        matched = [t for t in tracks if t.time_since_update == 0]
        assert (matched[0] is old) is same


def test_low_confidence_detections_do_not_revive_lost_ids():
    # A face half out of the frame scores low and its embedding is unreliable:
    # it starts a track of its own instead of reviving an id by appearance.
    for confidence, revived in ((0.5, False), (0.9, True)):
        tr = Tracker(n_init=2, max_age=2, reid_min_confidence=0.75)
        old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
        det = Detections(xyxy=np.asarray([[400, 200, 450, 260]], np.float32), confidence=np.asarray([confidence]),
                         embedding=EMB[:1].copy())
        (track,) = _up(tr, det)
        assert (track.track_id == old_id) is revived
        assert (tr.last.revived_ids == [old_id]) is revived


def test_reid_min_confidence_is_validated():
    with pytest.raises(ValueError, match="reid_min_confidence"):
        Tracker(reid_min_confidence=1.5)


def _held_return(**kw):
    """A lost track (EMB[0]) and a held track of its face 0.55 away, matched on the last update."""
    tr = Tracker(n_init=2, max_age=2, hold_cosine_distance=0.65, hold_max_hits=10, **kw)
    old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
    states = _return_at(tr, old_id, [0.55, 0.55])
    (held,) = tr.tracks
    assert held.held and held.is_tentative() and states[-1][0] == held.track_id
    return tr, old_id, held


def _linker(proposals, seen):
    def link(held, absent):
        seen.append(([t.track_id for t in held], [t.track_id for t in absent]))
        return proposals
    return link


def test_held_linker_hands_a_held_track_the_lost_id_inside_the_update():
    tr, old_id, held = _held_return()
    young_id, seen = held.track_id, []
    face = _dets([[404, 200, 454, 260]], [_at_distance(EMB[0], EMB[3], 0.55)])
    (track,) = _up(tr, face, held_linker=_linker([(young_id, old_id)], seen))
    assert seen == [([young_id], [old_id])]
    assert track is held and held.track_id == old_id and held.is_confirmed() and not held.held and held.revived
    assert tr.lost_tracks == [] and tr.last.revived_ids == [old_id] and young_id in tr.last.ended_ids
    # Its features were stored under the old id, which a later clear view matches in the cascade.
    (track,) = _up(tr, _dets([[406, 200, 456, 260]], [_at_distance(EMB[0], EMB[3], 0.55)]))
    assert track is held and track.track_id == old_id and track.time_since_update == 0
    assert tr.metric.has_samples(old_id) and not tr.metric.has_samples(young_id)


def test_held_linker_proposals_that_name_no_held_and_absent_pair_change_nothing():
    tr, old_id, held = _held_return()
    seen = []
    face = _dets([[404, 200, 454, 260]], [_at_distance(EMB[0], EMB[3], 0.55)])
    bad = [(held.track_id, 999), (old_id, held.track_id), (held.track_id, held.track_id)]
    (track,) = _up(tr, face, held_linker=_linker(bad, seen))
    assert track is held and held.held and held.track_id != old_id
    assert [t.track_id for t in tr.lost_tracks] == [old_id] and tr.last.revived_ids == []
    # A confirmed (shown) track is never offered to the linker.
    tr = Tracker(n_init=2, max_age=2, hold_cosine_distance=0.0)
    old_id = _lose(tr, [100, 100, 150, 160], EMB[0])
    _return_at(tr, old_id, [0.55, 0.55])
    seen = []
    (shown,) = _up(tr, face, held_linker=_linker([(tr.tracks[0].track_id, old_id)], seen))
    assert shown.is_confirmed() and shown.track_id != old_id and seen == []


def test_held_linker_none_releases_a_held_track_as_a_new_face():
    # (held id, None): the outside evidence says the held track is none of the
    # absent ones. It is confirmed (shown) at once under its own id, the lost
    # track waits on, and the next update does not hold it again.
    tr, old_id, held = _held_return()
    young_id, seen = held.track_id, []
    face = _dets([[404, 200, 454, 260]], [_at_distance(EMB[0], EMB[3], 0.55)])
    (track,) = _up(tr, face, held_linker=_linker([(young_id, None), (999, None)], seen))
    assert track is held and held.is_confirmed() and not held.held and held.track_id == young_id
    assert [t.track_id for t in tr.lost_tracks] == [old_id] and tr.last.revived_ids == []
    (track,) = _up(tr, _dets([[406, 200, 456, 260]], [_at_distance(EMB[0], EMB[3], 0.55)]))
    assert track is held and track.is_confirmed() and not track.held and track.track_id == young_id


def test_held_linker_uses_each_held_track_once():
    # A link and a release for the same held track: the first proposal wins.
    tr, old_id, held = _held_return()
    face = _dets([[404, 200, 454, 260]], [_at_distance(EMB[0], EMB[3], 0.55)])
    (track,) = _up(tr, face, held_linker=_linker([(held.track_id, old_id), (held.track_id, None)], []))
    assert track.track_id == old_id and track.is_confirmed() and tr.lost_tracks == []
    tr, old_id, held = _held_return()
    young_id = held.track_id
    (track,) = _up(tr, face, held_linker=_linker([(young_id, None), (young_id, old_id)], []))
    assert track.track_id == young_id and track.is_confirmed() and [t.track_id for t in tr.lost_tracks] == [old_id]
