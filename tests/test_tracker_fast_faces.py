"""Tracker: a face re-found by appearance after a jump beyond the motion gate keeps the jump's velocity
(``reid_velocity_frames``), so a small face crossing the frame one face width a frame stays one track."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import Detections, Tracker
from tracker.synthetic import random_unit_vectors

EMB = random_unit_vectors(2, 512, np.random.default_rng(11))
W, H = 20.0, 28.0          # a small broadcast face
STEP = 20.0                # one face width a frame: far outside the gate of a track standing still


def _det(x, score, row=0):
    return Detections(xyxy=np.array([[x, 200, x + W, 200 + H]], np.float32),
                      confidence=np.array([score], np.float32), embedding=EMB[[row]])


def _run(tracker, scores, *, still=3):
    """``still`` frames standing at x=100, then one frame a step for every score; the ids shown per frame."""
    ids = []
    for _ in range(still):
        (track,) = tracker.update(_det(100, 0.9)).tracks
    assert track.is_confirmed()
    for k, score in enumerate(scores, 1):
        update = tracker.update(_det(100 + k * STEP, score))
        ids.append(sorted(t.track_id for t in update.tracks if t.time_since_update == 0))
    return track, ids


# The first moving frame scores high enough to re-identify by appearance; the rest score below
# reid_min_confidence (0.75), as real small faces do, so only motion can keep them.
SCORES = [0.9] + [0.6] * 8


def test_a_fast_small_face_stays_one_track_with_the_jump_velocity():
    track, ids = _run(Tracker(n_init=2, reid_velocity_frames=6), SCORES)
    assert ids == [[track.track_id]] * len(SCORES)
    assert track.time_since_update == 0
    assert track.mean[4] == pytest.approx(STEP, abs=2.0)     # the filter learned the motion


def test_restarting_still_loses_the_same_face_after_the_jump():
    # The DeepSORT behaviour (0): re-found standing still, the next low-scoring box is too far for the
    # motion gate and for IoU, so it starts another track.
    track, ids = _run(Tracker(n_init=2, reid_velocity_frames=0), SCORES)
    assert ids[0] == [track.track_id]
    assert any(track.track_id not in frame for frame in ids[1:])


def test_a_track_re_found_after_longer_than_the_window_restarts_still():
    tr = Tracker(n_init=2, reid_velocity_frames=2)
    for _ in range(3):
        (track,) = tr.update(_det(100, 0.9)).tracks
    for _ in range(3):                       # three frames unseen: older than the 2-frame window
        tr.update(Detections.empty(512))
    tr.update(_det(400, 0.9))
    assert track.time_since_update == 0 and track.mean[0] == pytest.approx(410)
    assert track.mean[4] == 0.0


def test_a_track_re_found_after_a_cut_restarts_still():
    tr = Tracker(n_init=2, reid_velocity_frames=6)
    for _ in range(3):
        (track,) = tr.update(_det(100, 0.9)).tracks
    tr.update(_det(300, 0.9), scene_cut=True)
    assert track.time_since_update == 0
    assert track.mean[4] == 0.0


def test_the_window_is_checked():
    with pytest.raises(ValueError, match="reid_velocity_frames"):
        Tracker(reid_velocity_frames=-1)
