"""Detection inside crops around tracks (pipeline.crops), its schedule and its place in the pipeline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from pipeline.crops import CropDetection, CropWindows, drop_cut_faces, merge, plan_windows, to_frame
from pipeline.runner import Pipeline
from pipeline.schedule import DetectionSchedule
from tracker.boxes import iou_matrix
from tracker.detections import Detections
from tracker.tracker import Tracker

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


# ----------------------------------------------------------------- fakes
def blob_faces(image: np.ndarray) -> Detections:
    """A detector that sees every bright rectangle of ``image`` as a face (box, score 0.9, 5 landmarks)."""
    labels, n = ndimage.label(image[..., 0] > 127)
    boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labels)]
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    rel = np.asarray([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], np.float32)
    lms = xyxy[:, None, :2] + rel[None] * np.stack([w, h], 1)[:, None, :]
    return Detections(xyxy, np.full(len(xyxy), 0.9, np.float32), landmarks=lms)


class BlobDetector:
    """``detect`` and ``detect_crops`` over real pixels, counting calls."""

    input_size = 320                     # the full-frame input: a 320 px wide frame at scale 1

    def __init__(self) -> None:
        self.full_calls, self.crop_calls, self.crop_sizes = [], [], []

    def detect(self, frame):
        self.full_calls.append(frame.shape)
        return blob_faces(frame)

    def detect_crops(self, crops, input_size):
        self.crop_calls.append(len(crops))
        self.crop_sizes.append(input_size)
        return [blob_faces(c) for c in crops]


def frame_with(boxes, width=320, height=240) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    for x0, y0, x1, y1 in boxes:
        frame[y0:y1, x0:x1] = 255
    return frame


# ------------------------------------------------------------ windows
def test_a_window_is_centred_on_its_box_and_margin_face_sizes_wide():
    w = plan_windows(np.array([[100, 100, 120, 130]]), 640, 360, margin=3.0, min_side=16)
    # longer side 30 -> 90 px window around the centre (110, 115)
    assert w.xyxy.tolist() == [[65, 70, 155, 160]]
    assert w.inner.tolist() == [[True, True, True, True]]


@pytest.mark.parametrize("box, expected, inner", [
    ([0, 0, 20, 20], [0, 0, 60, 60], [False, False, True, True]),                    # top-left corner
    ([630, 340, 640, 360], [580, 300, 640, 360], [True, True, False, False]),        # bottom-right corner
    ([-15, 150, 5, 170], [0, 130, 60, 190], [False, True, True, True]),              # half out of the frame
])
def test_windows_at_the_frame_edges_are_shifted_inside_not_shrunk(box, expected, inner):
    w = plan_windows(np.array([box], np.float32), 640, 360, margin=3.0, min_side=16)
    assert w.xyxy.tolist() == [expected]
    assert w.inner.tolist() == [inner]


def test_window_sides_are_at_least_min_side_and_at_most_the_frame():
    w = plan_windows(np.array([[50, 50, 54, 54], [0, 0, 300, 200]]), 320, 240, margin=3.0, min_side=48)
    sides = (w.xyxy[:, 2] - w.xyxy[:, 0]).tolist()
    assert sides == [48, 240]
    assert (w.xyxy[:, 3] - w.xyxy[:, 1]).tolist() == [48, 240]
    assert w.xyxy[1].tolist() == [30, 0, 270, 240]        # centred on x, as tall as the frame


def test_crops_are_views_of_the_windows():
    frame = np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3)
    w = CropWindows(np.array([[5, 6, 25, 26]]), np.ones((1, 4), bool), [64])
    (crop,) = w.cut(frame)
    assert crop.shape == (20, 20, 3) and np.array_equal(crop, frame[6:26, 5:25])
    with pytest.raises(ValueError, match="x1 > x0"):
        CropWindows(np.array([[5, 6, 5, 26]]), np.ones((1, 4), bool), [64])
    with pytest.raises(ValueError, match="multiple of 32"):
        CropWindows(np.array([[5, 6, 25, 26]]), np.ones((1, 4), bool), [100])


def test_a_crop_is_never_shown_to_the_detector_smaller_than_the_full_frame_shows_it():
    boxes = np.array([[100, 100, 120, 120], [300, 50, 430, 181]], np.float32)   # 20 px and 131 px faces
    w = plan_windows(boxes, 640, 360, margin=3.0, min_side=48, input_size=128, min_scale=1.0)
    # 60 px window upscaled to the minimum 128; 360 px window (capped by the frame) kept at 1:1, rounded up to 384
    assert (w.xyxy[:, 2] - w.xyxy[:, 0]).tolist() == [60, 360]
    assert w.input_size.tolist() == [128, 384]
    assert w.input_pixels == 128 ** 2 + 384 ** 2
    half = plan_windows(boxes, 1280, 720, margin=3.0, min_side=48, input_size=128, min_scale=0.5)
    assert half.input_size.tolist() == [128, 224]          # a 393 px window at the full frame's 0.5 -> 197 -> 224


# ------------------------------------------------------------ mapping
def test_mapping_back_to_the_frame_is_an_exact_offset_of_boxes_and_landmarks():
    frame = frame_with([(130, 90, 151, 117)])
    windows = plan_windows(np.array([[128, 88, 150, 115]]), 320, 240, margin=3.0, min_side=16)
    (crop,) = windows.cut(frame)
    mapped = to_frame(blob_faces(crop), windows.xyxy[0])
    direct = blob_faces(frame)
    np.testing.assert_array_equal(mapped.xyxy, direct.xyxy)
    np.testing.assert_allclose(mapped.landmarks, direct.landmarks, atol=1e-4)
    assert mapped.xyxy.tolist() == [[130, 90, 151, 117]]


def test_a_face_cut_by_a_window_side_inside_the_frame_is_dropped_but_not_one_at_the_frame_edge():
    det = Detections(np.array([[10, 10, 20, 20], [0, 30, 8, 40], [40, 40, 50, 50]], np.float32),
                     np.array([0.9, 0.8, 0.7]))
    window = np.array([0, 0, 50, 60])
    inner = np.array([False, False, True, True])          # left and top sides are the frame's edges
    kept = drop_cut_faces(det, window, inner, tolerance=1.0)
    # the second face touches the frame's left edge (kept); the third touches the window's right side (dropped)
    assert kept.xyxy.tolist() == [[10, 10, 20, 20], [0, 30, 8, 40]]


def test_merge_keeps_the_best_of_overlapping_faces_from_two_windows():
    a = Detections(np.array([[10, 10, 30, 30], [100, 100, 120, 120]], np.float32), np.array([0.8, 0.6]))
    b = Detections(np.array([[11, 10, 31, 30]], np.float32), np.array([0.9]))
    out = merge([a, b, Detections.empty()], iou_threshold=0.45)
    assert out.xyxy.tolist() == [[11, 10, 31, 30], [100, 100, 120, 120]]
    assert out.confidence.tolist() == pytest.approx([0.9, 0.6])
    assert out.det_index.tolist() == [0, 1]
    assert len(merge([Detections.empty()], 0.45)) == 0


def test_two_faces_side_by_side_are_each_found_once():
    boxes = [(100, 100, 120, 124), (126, 100, 146, 124)]     # each inside the other's window
    frame = frame_with(boxes)
    det = BlobDetector()
    policy = CropDetection(input_size=96, margin=3.0, min_side=16)
    out = policy.detect(det, frame, policy.plan(np.array(boxes, np.float32), 320, 240))
    assert sorted(out.xyxy.tolist()) == [list(map(float, b)) for b in boxes]
    assert det.crop_calls == [2] and det.crop_sizes == [96] and det.full_calls == []


def test_crops_of_different_input_sides_go_to_the_detector_in_one_call_per_side():
    boxes = [(40, 40, 60, 64), (150, 60, 230, 160)]
    det = BlobDetector()
    policy = CropDetection(input_size=64, margin=2.0, min_side=16)
    windows = policy.plan(np.array(boxes, np.float32), 320, 240, full_scale=1.0)
    assert windows.input_size.tolist() == [64, 224]
    halved = CropDetection(input_size=64, margin=2.0, min_side=16, min_scale=0.5)
    assert halved.plan(np.array(boxes, np.float32), 320, 240, full_scale=1.0).input_size.tolist() == [64, 128]
    out = policy.detect(det, frame_with(boxes), windows)
    assert sorted(out.xyxy.tolist()) == [list(map(float, b)) for b in boxes]
    assert det.crop_calls == [1, 1] and det.crop_sizes == [64, 224]


def test_crop_detection_checks_its_keywords():
    for kw, match in [({"input_size": 100}, "multiple of 32"), ({"margin": 1.0}, "margin"),
                      ({"min_side": 4}, "min_side"), ({"merge_iou": 1.5}, "merge_iou"),
                      ({"edge_tolerance": -1}, "edge_tolerance"), ({"min_scale": 0}, "min_scale")]:
        with pytest.raises(ValueError, match=match):
            CropDetection(**kw)


# ------------------------------------------------------------ schedule
def test_full_frames_are_due_on_the_first_frame_on_cuts_and_every_full_frame_interval():
    s = DetectionSchedule(detect_interval=1, warmup_detect_interval=1, full_frame_interval=4)
    kinds = []
    for i in range(10):
        full = s.full_due(i, cut=(i == 6))
        s.detected(i, full=full)
        kinds.append(full)
    assert kinds == [True, False, False, False, True, False, True, False, False, False]
    with pytest.raises(ValueError, match="full_frame_interval"):
        DetectionSchedule(full_frame_interval=0)


# ------------------------------------------------------------ in the pipeline
def _moving_square(i: int):
    return (60 + 2 * i, 80, 60 + 2 * i + 24, 110)


def test_the_pipeline_tracks_through_crop_frames_and_finds_new_faces_on_full_frames():
    det = BlobDetector()
    p = Pipeline(det, None, Tracker(n_init=2), detect_interval=1, warmup_detect_interval=1,
                 crop_detection=True, full_frame_interval=6, crop_input_size=96)
    shown = {}
    for i in range(20):
        boxes = [_moving_square(i)] + ([(250, 150, 274, 180)] if i >= 8 else [])
        r = p.process(frame_with(boxes), i)
        shown[i] = {int(t): b for t, b in zip(r.track_ids, r.xyxy)}
    assert len(det.full_calls) == 4                   # frames 0, 6, 12, 18
    assert len(det.crop_calls) == 16 and set(det.crop_sizes) == {96}
    tid = next(iter(shown[2]))
    for i in range(2, 20):                             # one track, its detected box on every crop frame
        np.testing.assert_allclose(shown[i][tid], _moving_square(i), atol=1e-4)
    # the face that appears on frame 8 is first seen on the full frame 12 and confirmed on the crop frame 13
    assert all(len(shown[i]) == 1 for i in range(2, 13))
    assert len(shown[13]) == 2
    assert det.crop_calls[-1] == 2


def test_a_detector_without_detect_crops_gets_a_full_frame_on_every_detection():
    class FullOnly:
        def __init__(self):
            self.calls = 0

        def detect(self, frame):
            self.calls += 1
            return blob_faces(frame)

    det = FullOnly()
    p = Pipeline(det, None, Tracker(n_init=2), detect_interval=3, warmup_detect_interval=1)
    assert p.crop_detection is False
    det.detect_crops, det.fixed_input_size = (lambda crops, size: pytest.fail("crops on a fixed-size model")), 640
    assert Pipeline(det, None, Tracker(n_init=2)).crop_detection is False      # a fixed-size export
    results = [p.process(frame_with([_moving_square(i)]), i) for i in range(12)]
    assert det.calls == sum(r.detected for r in results) and det.calls >= 4
    with pytest.raises(ValueError, match="full_frame_interval"):
        Pipeline(BlobDetector(), None, Tracker(), crop_detection=True, full_frame_interval=0)
    with pytest.raises(ValueError, match="crop_detection"):
        Pipeline(BlobDetector(), None, Tracker(), crop_detection="yes")
    with pytest.raises(ValueError, match="min_scale"):
        Pipeline(BlobDetector(), None, Tracker(), crop_min_scale=0)


def test_by_default_crops_stand_in_only_for_the_warm_up_detections():
    det = BlobDetector()
    p = Pipeline(det, None, Tracker(n_init=2))       # detect_interval 3, full_frame_interval 3
    for i in range(30):
        p.process(frame_with([_moving_square(i)]), i)
    assert len(det.crop_calls) >= 1                  # warm-up frames 1 and 2 after the first full frame
    assert len(det.full_calls) == 10                 # every 3rd frame is a full frame, as without crops


# ------------------------------------------------------------ real detector, real video
@pytest.mark.integration
def test_crops_find_the_tracked_face_of_the_real_clip_at_its_full_frame_box():
    weights = SHARED / "models" / "yolov8n-face.pt"
    video = SHARED / "data" / "video" / "short_hamilton_clip.mp4"
    if not (weights.exists() and video.exists()):
        pytest.skip("../shared/models or the Hamilton clip is absent")
    import cv2

    from models.detector import FaceDetector

    detector = FaceDetector(weights, device="cpu")
    crops = CropDetection()
    cap = cv2.VideoCapture(str(video))
    frames = [cap.read()[1] for _ in range(204)][195:]
    cap.release()
    previous = detector.detect(frames[0])
    assert len(previous) >= 1
    checked = 0
    for frame in frames[1:]:
        full = detector.detect(frame)
        # the previous frame's boxes stand for the tracker's prediction
        found = crops.detect(detector, frame, crops.plan(previous.xyxy, frame.shape[1], frame.shape[0], 1.0))
        assert len(found) == len(full), (found.xyxy, full.xyxy)
        iou = iou_matrix(found.xyxy, full.xyxy)
        assert iou.max(axis=1).min() >= 0.8
        assert np.all(np.abs(found.confidence - full.confidence[iou.argmax(axis=1)]) < 0.15)
        assert found.landmarks is not None and found.landmarks.shape == (len(found), 5, 2)
        centre = found.xyxy[:, None, :2] <= found.landmarks
        assert centre.all()                            # the landmarks lie in their boxes, in frame pixels
        previous, checked = full, checked + 1
    assert checked == 8
