"""One contract per part (pipeline.protocols), run against every implementation and every fake.

A fake that drifts from the real part's contract fails here, not silently in
the tests that use it. The real detector and embedder need ../shared.
"""
from __future__ import annotations

import numpy as np
import pytest

from pipeline import protocols
from tracker.detections import Detections
from tracker.result import TrackerUpdate

from test_pipeline_runner import (  # noqa: E402  (the fakes the pipeline tests use)
    ONE_PERSON, FakeDetector, FakeEmbedder, ListSink, ListSource, ScriptedCuts, SpyIdentifier, SpyTracker, unit)


# ------------------------------------------------------------------ factories
def _frame(t: int = 3) -> np.ndarray:
    return ONE_PERSON.frame(t)


def _real_detector(shared_models):
    from models.detector import FaceDetector
    return FaceDetector(shared_models / "yolov8n-face.pt", device="cpu")


def _real_embedder(shared_models):
    from models.embedder import FaceEmbedder
    return FaceEmbedder(shared_models / "edgeface_xs.onnx", device="cpu")


def _cached(part, shared_models, tmp_path):
    from evaluation.replay import CachedDetector, CachedEmbedder, ModelCache
    cache = ModelCache(tmp_path / "cache.npz")
    if part == "detector":
        return CachedDetector(FakeDetector(ONE_PERSON), cache)
    return CachedEmbedder(FakeEmbedder(ONE_PERSON), cache)


DETECTORS = {
    "fake": lambda shared, tmp: FakeDetector(ONE_PERSON),
    "replay cache": lambda shared, tmp: _cached("detector", shared, tmp),
}
EMBEDDERS = {
    "fake": lambda shared, tmp: FakeEmbedder(ONE_PERSON),
    "replay cache": lambda shared, tmp: _cached("embedder", shared, tmp),
}


def _identifier(spy: bool):
    from gallery.identifier import Identifier
    from gallery.index import GalleryIndex
    index = GalleryIndex(["alice"], unit(1)[None])
    cls = SpyIdentifier if spy else Identifier
    return cls(index, similarity_threshold=0.5, min_margin=0.05, min_observations=1)


# ------------------------------------------------------------------ detector
@pytest.mark.parametrize("name", DETECTORS)
def test_detector_contract(name, tmp_path):
    _check_detector(DETECTORS[name](None, tmp_path), _frame())


@pytest.mark.integration
def test_real_detector_contract(shared_models, shared_data):
    import cv2
    image = cv2.imread(str(next((shared_data / "gallery").rglob("*.jpg"))))
    _check_detector(_real_detector(shared_models), image)


def _check_detector(detector, frame):
    assert isinstance(detector, protocols.Detector)
    dets = detector.detect(frame)
    assert isinstance(dets, Detections)
    assert dets.xyxy.shape == (len(dets), 4) and dets.confidence.shape == (len(dets),)
    assert list(dets.det_index) == list(range(len(dets)))
    assert len(detector.detect(frame)) == len(dets)  # deterministic on the same frame


# ------------------------------------------------------------------ embedder
@pytest.mark.parametrize("name", EMBEDDERS)
def test_embedder_contract(name, tmp_path):
    _check_embedder(EMBEDDERS[name](None, tmp_path), _frame(), FakeDetector(ONE_PERSON).detect(_frame()))


@pytest.mark.integration
def test_real_embedder_contract(shared_models, shared_data):
    import cv2
    image = cv2.imread(str(next((shared_data / "gallery").rglob("*.jpg"))))
    _check_embedder(_real_embedder(shared_models), image, _real_detector(shared_models).detect(image))


def _check_embedder(embedder, frame, dets):
    assert isinstance(embedder, protocols.Embedder)
    vectors = np.asarray(embedder.embed(frame, dets))
    assert vectors.dtype == np.float32 and vectors.shape[0] == len(dets) and len(dets) > 0
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


# ------------------------------------------------------------------ tracker
@pytest.mark.parametrize("make", [lambda: __import__("tracker").Tracker(n_init=1), lambda: SpyTracker(n_init=1)],
                         ids=["Tracker", "SpyTracker"])
def test_tracker_contract(make):
    tr = make()
    assert isinstance(tr, protocols.Tracker)
    dets = Detections(np.array([[10, 10, 50, 60], [100, 10, 140, 60]], np.float32),
                      np.array([0.9, 0.9], np.float32), embedding=np.stack([unit(1), unit(2)]))
    out = tr.update(dets, scene_cut=False, elapsed_frames=1, held_linker=None)
    assert isinstance(out, TrackerUpdate)
    assert {t.det_index for t in out.tracks} == {0, 1}
    for t in out.tracks:
        assert isinstance(t, protocols.TrackView)
    boxes = tr.predicted_boxes([t.track_id for t in out.tracks], 2)
    assert boxes.shape == (2, 4)
    gone = tr.reset()
    assert sorted(gone.ended_ids) == sorted(t.track_id for t in out.tracks)


# ------------------------------------------------------------------ identifier
@pytest.mark.parametrize("spy", [False, True], ids=["Identifier", "SpyIdentifier"])
def test_identifier_contract(spy):
    from tracker import Tracker
    ident = _identifier(spy)
    assert isinstance(ident, protocols.Identifier)
    dets = Detections(np.array([[10, 10, 50, 60]], np.float32), np.array([0.95], np.float32),
                      embedding=unit(1)[None])
    (track,) = Tracker(n_init=1).update(dets).tracks
    ident.update([track], dets, np.ones(1))
    assert ident.get(track.track_id).name == "alice"
    ident.forget([track.track_id])
    assert ident.get(track.track_id).name is None
    ident.reset()


# ------------------------------------------------------------------ scene cuts
@pytest.mark.parametrize("name", ["histogram", "scripted"])
def test_scene_cut_detector_contract(name):
    from pipeline.scene_cut import HistogramSceneCutDetector
    det = HistogramSceneCutDetector() if name == "histogram" else ScriptedCuts({5})
    assert isinstance(det, protocols.SceneCutDetector)
    assert det.update(_frame(1)) in (True, False)
    det.reset()


# ------------------------------------------------------------------ sources and sinks
def _image_folder(tmp_path):
    import cv2
    from pipeline.sources import open_source
    for t in range(3):
        cv2.imwrite(str(tmp_path / f"{t:03d}.png"), _frame(t))
    return open_source(str(tmp_path))


@pytest.mark.parametrize("name", ["image folder", "list"])
def test_source_contract(name, tmp_path):
    source = _image_folder(tmp_path) if name == "image folder" else ListSource(ONE_PERSON, 3)
    assert isinstance(source, protocols.Source)
    frames = []
    while (f := source.read()) is not None:
        frames.append(f)
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].image.shape == (240, 320, 3)
    assert not source.is_live and source.fps > 0
    source.close()


@pytest.mark.parametrize("name", ["video file", "list"])
def test_sink_contract(name, tmp_path):
    from pipeline.sinks import VideoFileSink
    sink = VideoFileSink(tmp_path / "out.mp4", fps=25.0) if name == "video file" else ListSink()
    assert isinstance(sink, protocols.Sink)
    for t in range(3):
        assert sink.write(_frame(t)) is not False
    sink.close()
    if name == "video file":
        assert (tmp_path / "out.mp4").stat().st_size > 0


def test_every_protocol_has_a_contract_test():
    tested = {"Detector", "Embedder", "TrackView", "Tracker", "Identifier", "SceneCutDetector", "Source", "Sink"}
    assert {p.__name__ for p in protocols.ALL} == tested
