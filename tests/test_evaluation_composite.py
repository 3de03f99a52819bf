"""The talking-head composite: segment arithmetic on its own, and a short
real clip (integration) whose shapes, ids, heights and gallery are checked."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from evaluation import composite
from evaluation import gt as gtio


def test_ping_pong_and_source_index():
    assert [composite.ping_pong(i, 4) for i in range(8)] == [0, 1, 2, 3, 2, 1, 0, 1]
    assert composite.ping_pong(5, 1) == 0
    # a 30 fps original in a 25 fps composite: frame 25 is the original's frame 30
    assert composite.source_index(25, 30.0, 25.0, 100) == 30
    assert composite.source_index(25, 30.0, 25.0, 20) == composite.ping_pong(30, 20)


def test_enrollment_frames_lie_after_the_segment_and_a_gap():
    used, frames = composite.enrollment_frames(135, 22.1, count=4)
    assert len(frames) == 4 and frames[-1] == 134
    assert min(frames) >= used + composite.GAP_FRAMES
    with pytest.raises(ValueError, match="too short"):
        composite.enrollment_frames(30, 25.0)
    with pytest.raises(ValueError, match="3 to 5"):
        composite.enrollment_frames(300, 25.0, count=6)


def test_feathered_alpha_is_one_inside_and_fades_at_the_edges():
    a = composite.feathered_alpha(50, 40)
    assert a.shape == (50, 40, 1) and a[25, 20, 0] == 1 and a[0, 20, 0] < 0.2 and a[25, 0, 0] < 0.2


def test_speaker_names_are_enrolled_names():
    assert composite.speaker_name("x/video_retalking_4.mp4") == "talking_retalking_4"
    assert gtio._default_enrolled(composite.speaker_name("video_retalking_4.mp4"))


@pytest.mark.integration
def test_a_short_composite_has_exact_shapes_ids_heights_and_gallery(tmp_path, shared_data, detector_weights):
    from evaluation.sprites import yolo_detect_fn

    videos = [shared_data / "video" / "talking_heads" / f"{n}.mp4" for n in composite.TALKING_HEADS]
    heights = (16, 24, 34, 48)
    truth = composite.write_composite(tmp_path, videos, yolo_detect_fn(detector_weights), heights=heights,
                                      num_frames=60)
    cap = cv2.VideoCapture(str(tmp_path / "video.mp4"))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (720, 1280, 3)
        n += 1
    assert n == 60
    loaded = gtio.load_ground_truth(tmp_path)
    assert len(loaded.boxes) == 240 and sorted(np.unique(loaded.boxes.ids)) == [1, 2, 3, 4]
    assert {i.name for i in loaded.identities.values()} == {composite.speaker_name(v) for v in videos}
    assert all(i.enrolled for i in loaded.identities.values())
    for gid, target in zip((1, 2, 3, 4), heights):
        h = loaded.boxes.tlwh[loaded.boxes.ids == gid, 3]
        assert abs(np.median(h) - target) < 0.25 * target, (gid, np.median(h))
    x, y, w, h = loaded.boxes.tlwh.T
    assert x.min() >= 0 and y.min() >= 0 and (x + w).max() <= 1280 and (y + h).max() <= 720
    assert (loaded.boxes.score == 1).mean() > 0.95
    info = json.loads((tmp_path / "synth.json").read_text())
    assert info["num_frames"] == 60 and info["composite"] is True
    for gid, ident in loaded.identities.items():
        photos = sorted((tmp_path / "gallery" / ident.name).glob("*.jpg"))
        assert 3 <= len(photos) <= 5
        assert min(ident.extra["enrollment_frames"]) >= ident.extra["segment_frames"][1]
        original = cv2.VideoCapture(ident.extra["video"])
        assert cv2.imread(str(photos[0])).shape[:2] == (int(original.get(4)), int(original.get(3)))
    assert truth.num_frames == 60
