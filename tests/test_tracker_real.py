"""The tracker on real faces: YOLO detections and EdgeFace embeddings from ../shared videos.

Detections and embeddings are computed once per module with the project's
``models`` package (CPU); the tracker then runs over them in several ways.
"""
from __future__ import annotations

import numpy as np
import pytest

from tracker import Detections, Tracker


def _up(tracker, *args, **kwargs):
    """One update; its TrackerUpdate is kept as ``tracker.last`` for the assertions that follow."""
    tracker.last = tracker.update(*args, **kwargs)
    return tracker.last.tracks

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _read_frames(path, indices):
    import cv2
    cap = cv2.VideoCapture(str(path))
    wanted, frames, i = set(indices), {}, 0
    while i <= max(indices):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            frames[i] = frame
        i += 1
    cap.release()
    return [frames[i] for i in indices if i in frames]


def _detect_and_embed(detector_weights, embedder_weights, frames):
    from models import detector as detector_mod
    from models import embedder as embedder_mod
    detector = detector_mod.FaceDetector(detector_weights, device="cpu")
    embedder = embedder_mod.FaceEmbedder(embedder_weights, device="cpu")
    out = []
    for frame in frames:
        det = detector.detect(frame)
        out.append(det.with_embedding(embedder.embed(frame, det)) if len(det) else det)
    return out


@pytest.fixture(scope="module")
def talking_head(shared_data, detector_weights, embedder_weights):
    path = shared_data / "video" / "talking_heads" / "video_retalking_2.mp4"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return _detect_and_embed(detector_weights, embedder_weights, _read_frames(path, range(0, 120, 3)))


@pytest.fixture(scope="module")
def hamilton_cut(shared_data, detector_weights, embedder_weights):
    """Frames 195-230 of the Hamilton clip: Lin-Manuel Miranda, a hard cut at 211, the audience."""
    path = shared_data / "video" / "short_hamilton_clip.mp4"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    indices = list(range(195, 231))
    return indices, _detect_and_embed(detector_weights, embedder_weights, _read_frames(path, indices))


def _main_face(det: Detections) -> int:
    """Row of the largest face."""
    return int(np.argmax(det.width * det.height))


def test_talking_head_keeps_one_id(talking_head):
    assert sum(len(d) > 0 for d in talking_head) >= 0.9 * len(talking_head)
    tracker = Tracker()
    ids = set()
    for det in talking_head:
        tracks = _up(tracker, det)
        if len(det):
            row = _main_face(det)
            ids |= {t.track_id for t in tracks if t.det_index == det.det_index[row] and t.is_confirmed()}
    assert len(ids) == 1


def test_talking_head_revived_after_long_absence(talking_head):
    tracker = Tracker(max_age=30)
    first, second = talking_head[:15], talking_head[15:]
    for det in first:
        _up(tracker, det)
    (main,) = [t.track_id for t in tracker.tracks if t.is_confirmed()]
    for _ in range(45):  # gone for 45 frames > max_age: moves to the lost buffer
        _up(tracker, Detections.empty(512))
    assert main in [t.track_id for t in tracker.lost_tracks]
    revived = False
    for det in second:
        tracks = _up(tracker, det)
        revived |= any(t.revived and t.track_id == main for t in tracks)
    assert revived
    assert main in [t.track_id for t in tracker.tracks]


def test_shot_cut_to_other_people_does_not_carry_ids_over(hamilton_cut):
    indices, dets = hamilton_cut
    cut = indices.index(211)
    tracker = Tracker()
    before, after = set(), set()
    for i, det in enumerate(dets):
        tracks = _up(tracker, det, scene_cut=(i == cut))
        matched = {t.track_id for t in tracks if t.time_since_update == 0 and t.is_confirmed()}
        (before if i < cut else after).update(matched)
    assert before, "Lin-Manuel Miranda was tracked before the cut"
    assert after, "the audience was tracked after the cut"
    assert before.isdisjoint(after)
