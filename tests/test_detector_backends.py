"""Detector backends and batching: every form answers like the ``.pt`` on real frames."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def crowd_frames(shared_data):
    from pipeline.sources import open_source

    source = open_source(str(shared_data / "video" / "facenet_pytorch_pedestrians.mp4"))
    try:
        return [source.read().image for _ in range(3)]
    finally:
        source.close()


@pytest.fixture(scope="module")
def pt_detector(detector_weights):
    from models.detector import FaceDetector

    return FaceDetector(detector_weights, device="cpu")


def test_detect_batch_gives_what_detect_gives_frame_by_frame(pt_detector, crowd_frames):
    frames = [crowd_frames[0], crowd_frames[1][:720, :1280], crowd_frames[2]]   # sizes may differ in a batch
    from tracker.boxes import iou_matrix

    batched = pt_detector.detect_batch(frames)
    assert len(batched) == 3
    for frame, got in zip(frames, batched):
        want = pt_detector.detect(frame)
        assert len(want) >= 3
        # A batch is letterboxed to one common shape, so boxes move by a pixel or so, not more.
        assert len(got) == len(want)
        assert iou_matrix(got.xyxy, want.xyxy).max(axis=1).min() > 0.95
        np.testing.assert_allclose(np.sort(got.confidence), np.sort(want.confidence), atol=0.03)
        assert got.landmarks is not None and got.landmarks.shape == (len(want), 5, 2)


def test_detect_batch_refuses_an_empty_batch_and_a_bad_frame(pt_detector, crowd_frames):
    with pytest.raises(ValueError, match="at least one frame"):
        pt_detector.detect_batch([])
    with pytest.raises(ValueError, match=r"frames_bgr\[1\]"):
        pt_detector.detect_batch([crowd_frames[0], np.zeros((0, 0, 3), np.uint8)])
