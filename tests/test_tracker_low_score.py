"""Tracker: low-scoring detections (``low_score_threshold``) continue confirmed tracks and nothing else."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import Detections, Tracker
from tracker.synthetic import random_unit_vectors

EMB = random_unit_vectors(4, 512, np.random.default_rng(7))
BOX = np.array([100, 100, 130, 136], np.float32)


def _dets(boxes, scores, rows=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    rows = list(range(len(boxes))) if rows is None else rows
    return Detections(xyxy=boxes, confidence=np.asarray(scores, np.float32), embedding=EMB[rows].reshape(len(boxes), -1))


def _confirmed(tr, frames=4, box=BOX, row=0):
    for _ in range(frames):
        (track,) = tr.update(_dets([box], [0.9], [row])).tracks
    assert track.is_confirmed()
    return track


def test_a_confirmed_track_goes_on_through_frames_its_face_scores_low():
    tr = Tracker(n_init=2, low_score_threshold=0.5)
    track = _confirmed(tr)
    for k in range(1, 6):
        update = tr.update(_dets([BOX + [k, 0, k, 0]], [0.35]))
        assert [t.track_id for t in update.tracks] == [track.track_id]
        assert track.time_since_update == 0 and track.det_index == 0
    assert track.hits == 9


def test_without_the_threshold_the_same_low_detection_counts_like_any_other():
    tr = Tracker(n_init=2)                      # default 0: every detection alike
    track = _confirmed(tr)
    tr.update(_dets([BOX], [0.35]))
    assert track.time_since_update == 0


def test_a_low_scoring_face_starts_no_track():
    tr = Tracker(n_init=1, low_score_threshold=0.5)
    for _ in range(5):
        assert tr.update(_dets([BOX], [0.4])).tracks == []
    # ...and at the threshold it is a normal detection.
    assert len(tr.update(_dets([BOX], [0.5])).tracks) == 1


def test_a_low_scoring_match_stores_no_appearance():
    tr = Tracker(n_init=2, low_score_threshold=0.5)
    track = _confirmed(tr, row=0)
    before = float(tr.metric.distance(EMB[[1]], [track.track_id])[0, 0])
    for _ in range(3):
        tr.update(_dets([BOX], [0.3], [1]))   # another face's embedding on the low-scoring box
    assert track.time_since_update == 0
    assert float(tr.metric.distance(EMB[[1]], [track.track_id])[0, 0]) == pytest.approx(before)


def test_low_scoring_faces_do_not_continue_tentative_tracks_or_revive_lost_ones():
    tr = Tracker(n_init=3, max_age=2, low_score_threshold=0.5)
    tr.update(_dets([BOX], [0.9]))
    assert tr.update(_dets([BOX], [0.3])).tracks == []          # the tentative track is deleted on its miss
    tr = Tracker(n_init=2, max_age=2, low_score_threshold=0.5)
    track = _confirmed(tr)
    for _ in range(3):
        tr.update(Detections.empty(512))
    assert track.track_id in [t.track_id for t in tr.lost_tracks]
    update = tr.update(_dets([BOX], [0.3]))                      # same face and place, but low: no revival
    assert update.tracks == [] and update.revived_ids == []


def test_a_low_scoring_face_only_continues_a_track_matched_on_the_previous_update():
    tr = Tracker(n_init=2, max_age=10, low_score_threshold=0.5)
    track = _confirmed(tr)
    tr.update(Detections.empty(512))
    assert track.time_since_update == 1
    tr.update(_dets([BOX], [0.3]))
    assert track.time_since_update == 2


def test_a_high_scoring_face_wins_the_track_over_a_low_one_and_the_low_one_is_dropped():
    tr = Tracker(n_init=2, low_score_threshold=0.5)
    track = _confirmed(tr)
    both = _dets([BOX + 2, BOX], [0.9, 0.3], [0, 0])
    update = tr.update(both)
    assert [t.track_id for t in update.tracks] == [track.track_id] and track.det_index == 0


def test_no_low_scoring_continuation_across_a_cut():
    tr = Tracker(n_init=2, low_score_threshold=0.5)
    track = _confirmed(tr)
    tr.update(_dets([BOX], [0.3]), scene_cut=True)
    assert track.time_since_update == 1


def test_the_threshold_is_checked():
    with pytest.raises(ValueError, match="low_score_threshold"):
        Tracker(low_score_threshold=1.5)
