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

    return FaceDetector(detector_weights, device="cpu", cpu_format=None)     # the .pt in torch: the reference


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


# ------------------------------------------------------------------ exports, cached
def test_the_export_cache_key_holds_the_source_checksum_form_and_size(tmp_path):
    from models.export import export_dir

    a, b = tmp_path / "det.pt", tmp_path / "other" / "det.pt"
    b.parent.mkdir()
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights two")
    key = export_dir(a, "openvino", cache_dir=tmp_path / "cache")
    assert key.parent == tmp_path / "cache" / "exports"
    assert key != export_dir(b, "openvino", cache_dir=tmp_path / "cache")          # other bytes, other export
    assert key == export_dir(tmp_path / "det.pt", "openvino", cache_dir=tmp_path / "cache")
    assert key != export_dir(a, "onnx", cache_dir=tmp_path / "cache")
    assert key != export_dir(a, "openvino", input_size=960, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("kw, error, match", [
    ({"form": "tensorrt"}, ValueError, "form must be one of"),
    ({"form": "openvino", "input_size": 100}, ValueError, "input_size"),
])
def test_a_bad_export_request_is_refused(tmp_path, kw, error, match):
    from models.export import exported_detector

    pt = tmp_path / "det.pt"
    pt.write_bytes(b"x")
    with pytest.raises(error, match=match):
        exported_detector(pt, cache_dir=tmp_path, **kw)


def test_exports_are_made_from_a_local_pt_only(tmp_path, shared_models):
    from models.export import exported_detector

    with pytest.raises(FileNotFoundError, match="not found"):
        exported_detector(tmp_path / "none.pt", "openvino", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"from an ultralytics \.pt file, got yolov8n-face\.onnx"):
        exported_detector(shared_models / "yolov8n-face.onnx", "openvino", cache_dir=tmp_path)


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.mark.slow
@pytest.mark.parametrize("form", ["openvino", "onnx"])
def test_an_export_matches_the_pt_on_real_frames_and_is_made_once(form, detector_weights, pt_detector,
                                                                   crowd_frames, shared_data, export_cache,
                                                                   monkeypatch):
    import models.export as export
    from models.bench import box_recall
    from models.detector import FaceDetector
    from pipeline.sources import open_source

    det = FaceDetector(detector_weights, device="cpu", cpu_format=form, export_cache_dir=export_cache)
    assert det.path.parent.parent == export_cache / "exports" and det.source_path == detector_weights.resolve()
    assert det.task == "pose" and det.has_landmarks
    source = open_source(str(shared_data / "video" / "short_hamilton_clip.mp4"))
    small = [source.read().image for _ in range(30)][::10]
    source.close()
    ref = hits = 0
    for frame in crowd_frames + small:
        want = pt_detector.detect(frame).xyxy
        ref += len(want)
        hits += box_recall(want, det.detect(frame).xyxy, 0.5)
    assert ref >= 20 and hits / ref >= 0.99
    # A second detector finds the export in the cache and never exports again.
    monkeypatch.setattr(export, "_export_into", lambda *a: pytest.fail("exported twice"))
    again = FaceDetector(detector_weights, device="cpu", cpu_format=form, export_cache_dir=export_cache)
    assert again.path == det.path


def test_cpu_format_applies_to_pt_weights_on_the_cpu_only(shared_models, tmp_path):
    from models.detector import FaceDetector

    onnx = FaceDetector(shared_models / "yolov8n-face.onnx", device="cpu", cpu_format="openvino",
                        export_cache_dir=tmp_path)
    assert onnx.path == (shared_models / "yolov8n-face.onnx").resolve()     # loaded as it is
    assert not (tmp_path / "exports").exists()
    with pytest.raises(ValueError, match="cpu_format must be one of"):
        FaceDetector(shared_models / "yolov8n-face.pt", device="cpu", cpu_format="ncnn")


def test_the_cpu_default_is_the_openvino_export_and_a_failed_export_falls_back_to_torch(
        detector_weights, pt_detector, export_cache, tmp_path, monkeypatch, caplog):
    import models.export as export
    from models.detector import FaceDetector

    det = FaceDetector(detector_weights, device="cpu", export_cache_dir=export_cache)
    assert det.cpu_format == "openvino" and det.path.name.endswith("_openvino_model")
    assert pt_detector.cpu_format is None and pt_detector.path == detector_weights.resolve()

    def broken(*args):
        raise RuntimeError("openvino is not importable")

    monkeypatch.setattr(export, "_export_into", broken)
    with caplog.at_level("WARNING", logger="models.detector"):
        fallback = FaceDetector(detector_weights, device="cpu", export_cache_dir=tmp_path / "fresh")
    assert fallback.cpu_format is None and fallback.path == detector_weights.resolve()
    assert "running the .pt in torch" in caplog.text and "openvino is not importable" in caplog.text
    frame = np.zeros((360, 640, 3), np.uint8)
    assert len(fallback.detect(frame)) == 0                     # it still detects (nothing on a black frame)
    assert not list((tmp_path / "fresh" / "exports").glob("*openvino*"))   # no half export left behind


def test_box_recall_is_one_to_one():
    from models.bench import box_recall

    ref = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    assert box_recall(ref, ref) == 2
    assert box_recall(ref, ref[:1]) == 1                                   # one box cannot match two
    assert box_recall(ref, ref + [3, 0, 3, 0]) == 2                         # IoU 70 / 130 = 0.54
    assert box_recall(ref, ref + [4, 0, 4, 0]) == 0                         # IoU 60 / 140 = 0.43
    assert box_recall(ref, np.zeros((0, 4))) == 0
