import logging
"""FaceDetector: fake YOLO ONNX graphs with known outputs (exact box/landmark mapping, detect-only models),
keyword validation, metadata; real weights in the integration tests."""
import json
import struct
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.detector import FaceDetector, _export_metadata, _make_detections
from tracker.detections import Detections

ANCHORS = 8400


def fake_yolo(path, *, task="pose", boxes=((320.0, 320.0, 100.0, 80.0, 0.9),), keypoints=None, metadata=True):
    """A 640x640 ONNX 'YOLO' whose output is a constant: the given boxes (cx, cy, w, h, score) in input pixels.

    For ``task="pose"`` each box carries 5 keypoints (x, y, visibility). The graph adds 0 * mean(input) so
    the output depends on the input tensor formally, as a real model's does.
    """
    channels = 20 if task == "pose" else 5
    out = np.zeros((1, channels, ANCHORS), np.float32)
    for i, (cx, cy, w, h, score) in enumerate(boxes):
        out[0, :5, i] = [cx, cy, w, h, score]
        if task == "pose":
            kp = keypoints[i] if keypoints is not None else [
                (cx - 20, cy - 10), (cx + 20, cy - 10), (cx, cy + 5), (cx - 15, cy + 25), (cx + 15, cy + 25)]
            for k, (x, y) in enumerate(kp):
                out[0, 5 + 3 * k:8 + 3 * k, i] = [x, y, 0.95]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "fake_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, channels, ANCHORS])],
        initializer=[numpy_helper.from_array(out, "const"), numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        meta = {"stride": "32", "task": task, "batch": "1", "imgsz": "[640, 640]", "names": "{0: 'face'}",
                "channels": "3", "end2end": "False"}
        if task == "pose":
            meta["kpt_shape"] = "(5, 3)"
        for key, value in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def pose_model(tmp_path_factory):
    return fake_yolo(tmp_path_factory.mktemp("fake") / "fake_pose.onnx")


@pytest.fixture(scope="module")
def pose_detector(pose_model):
    return FaceDetector(pose_model, device="cpu")


def test_pose_model_gives_landmarks_mapped_exactly(pose_detector):
    assert pose_detector.has_landmarks and pose_detector.task == "pose"
    # 1280x960 frame: letterbox scale 0.5, 80 px of padding above and below in the 640x640 input.
    frame = np.zeros((960, 1280, 3), np.uint8)
    d = pose_detector.detect(frame)
    assert isinstance(d, Detections) and len(d) == 1
    np.testing.assert_allclose(d.xyxy[0], [540, 400, 740, 560], atol=0.05)
    np.testing.assert_allclose(d.confidence, [0.9], atol=1e-6)
    expected_lm = np.array([(600, 460), (680, 460), (640, 490), (610, 530), (670, 530)], np.float32)
    np.testing.assert_allclose(d.landmarks[0], expected_lm, atol=0.05)
    np.testing.assert_array_equal(d.det_index, [0])


def test_any_resolution_grayscale_and_bgra(pose_detector):
    # 640x640: identity mapping; grayscale and BGRA frames give the same result.
    frame = np.zeros((640, 640), np.uint8)
    for f in (frame, frame[..., None], np.zeros((640, 640, 4), np.uint8)):
        d = pose_detector.detect(f)
        np.testing.assert_allclose(d.xyxy[0], [270, 280, 370, 360], atol=0.05)
    # A tall frame (480 wide, 960 high): scale 2/3, horizontal padding 160 in the input.
    d = pose_detector.detect(np.zeros((960, 480, 3), np.uint8))
    np.testing.assert_allclose(d.xyxy[0], [(270 - 160) * 1.5, 280 * 1.5, (370 - 160) * 1.5, 360 * 1.5], atol=0.05)


@pytest.mark.parametrize("bad", [None, np.zeros((0, 0, 3), np.uint8), np.zeros((10, 0), np.uint8),
                                 np.zeros((10, 10, 3), np.float64), np.zeros((10, 10, 2), np.uint8)])
def test_bad_frames_raise_value_error(pose_detector, bad):
    with pytest.raises(ValueError, match="frame_bgr"):
        pose_detector.detect(bad)


def test_no_faces_gives_empty_detections(tmp_path):
    det = FaceDetector(fake_yolo(tmp_path / "none.onnx", boxes=((320, 320, 100, 80, 0.1),)), device="cpu")
    d = det.detect(np.zeros((300, 500, 3), np.uint8))
    assert len(d) == 0 and d.landmarks.shape == (0, 5, 2) and d.xyxy.shape == (0, 4)


def test_confidence_threshold_and_nms(tmp_path):
    boxes = ((320, 320, 100, 100, 0.9), (322, 321, 100, 100, 0.8), (100, 100, 50, 50, 0.6), (500, 500, 40, 40, 0.3))
    path = fake_yolo(tmp_path / "many.onnx", boxes=boxes)
    frame = np.zeros((640, 640, 3), np.uint8)
    d = FaceDetector(path, device="cpu", confidence_threshold=0.5).detect(frame)
    np.testing.assert_allclose(d.confidence, [0.9, 0.6], atol=1e-6)  # overlap suppressed, 0.3 dropped
    d = FaceDetector(path, device="cpu", confidence_threshold=0.25, nms_iou_threshold=0.99).detect(frame)
    np.testing.assert_allclose(d.confidence, [0.9, 0.8, 0.6, 0.3], atol=1e-6)


def test_detection_only_model_has_no_landmarks(tmp_path):
    det = FaceDetector(fake_yolo(tmp_path / "det.onnx", task="detect"), device="cpu")
    assert not det.has_landmarks and det.task == "detect"
    d = det.detect(np.zeros((640, 640, 3), np.uint8))
    assert len(d) == 1 and d.landmarks is None
    np.testing.assert_allclose(d.xyxy[0], [270, 280, 370, 360], atol=0.05)


def test_task_without_metadata_inferred_from_output_channels(tmp_path):
    pose = fake_yolo(tmp_path / "p.onnx", metadata=False)
    det = fake_yolo(tmp_path / "d.onnx", task="detect", metadata=False)
    assert _export_metadata(pose)["task"] == "pose" and _export_metadata(det)["task"] == "detect"
    assert _export_metadata(pose)["fixed_size"] == 640


def test_task_can_be_forced(pose_model):
    # The file says pose; forcing 'detect' is honoured (and then no landmarks are read).
    assert FaceDetector(pose_model, device="cpu", task="detect").has_landmarks is False


def test_a_fixed_size_export_runs_at_its_own_size_with_a_warning(pose_model, caplog):
    with caplog.at_level("WARNING", logger="models.detector"):
        det = FaceDetector(pose_model, device="cpu", input_size=320)
    assert det.input_size == 640 and det.fixed_input_size == 640
    assert "fixed 640x640 input: detecting at 640, not at input_size=320" in caplog.text
    with pytest.raises(ValueError, match="fixed 640x640 input: it cannot detect in crops"):
        det.detect_crops([np.zeros((64, 64, 3), np.uint8)], 128)
    with pytest.raises(ValueError, match="fixed 640x640 input: it cannot detect at input_size=960"):
        det.detect(np.zeros((720, 1280, 3), np.uint8), input_size=960)
    assert len(det.detect(np.zeros((720, 1280, 3), np.uint8), input_size=640)) == 1    # its own size: fine
    with pytest.raises(ValueError, match="multiple of 32"):
        det.detect(np.zeros((720, 1280, 3), np.uint8), input_size=1000)


def test_tflite_and_engine_metadata(tmp_path):
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"\x00" * 64)
    with zipfile.ZipFile(tfl, "a") as zf:
        zf.writestr("metadata.json", json.dumps({"task": "pose", "kpt_shape": [5, 3], "imgsz": [640, 640]}))
    assert _export_metadata(tfl) == {"task": "pose", "kpt_shape": [5, 3], "imgsz": [640, 640], "fixed_size": 640}
    engine = tmp_path / "m.engine"
    header = json.dumps({"task": "detect", "imgsz": [320, 320], "dynamic": False}).encode()
    engine.write_bytes(struct.pack("<i", len(header)) + header + b"\x00" * 16)
    assert _export_metadata(engine)["task"] == "detect"
    assert _export_metadata(engine)["fixed_size"] == 320


@pytest.mark.parametrize(
    "kwargs,name",
    [(dict(confidence_threshold=1.5), "confidence_threshold"), (dict(confidence_threshold="x"), "confidence_threshold"),
     (dict(nms_iou_threshold=-0.1), "nms_iou_threshold"), (dict(input_size=100), "input_size"),
     (dict(input_size=0), "input_size"), (dict(half="yes"), "half"), (dict(task="segment"), "task"),
     (dict(max_detections=0), "max_detections"), (dict(device="tpu"), "device")],
)
def test_constructor_keywords_validated(pose_model, kwargs, name):
    with pytest.raises(ValueError, match=name):
        FaceDetector(pose_model, **kwargs)


def test_missing_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="resolve_weights"):
        FaceDetector(tmp_path / "absent.pt")


def test_half_is_ignored_on_cpu(pose_model):
    assert FaceDetector(pose_model, device="cpu", half=True).half is False


def test_predict_passes_no_deprecated_arguments(pose_model, caplog):
    # ultralytics 8.4 warns on every predict() given the deprecated ``half``; the
    # detector must stay quiet, on CPU (no precision argument) as on CUDA (quantize=16).
    det = FaceDetector(pose_model, device="cpu")
    assert "half" not in det._predict_args and "quantize" not in det._predict_args
    with caplog.at_level(logging.WARNING):
        det.detect(np.zeros((480, 640, 3), np.uint8))
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]


def test_make_detections_clips_and_sorts():
    d = _make_detections([[-5, -5, 50, 50], [10, 10, 700, 500]], [0.6, 0.9], None, 640, 480)
    np.testing.assert_allclose(d.xyxy, [[10, 10, 640, 480], [0, 0, 50, 50]])
    np.testing.assert_allclose(d.confidence, [0.9, 0.6])
