"""evaluation.replay's model cache: full frames and crops are answered from the cache once recorded."""
from __future__ import annotations

import numpy as np

from evaluation.replay import CachedDetector, ModelCache
from tracker.detections import Detections


class CountingDetector:
    """One face per image, its box the image's mean brightness (so content matters); counts its calls."""

    input_size, confidence_threshold, nms_iou_threshold = 640, 0.5, 0.45

    def __init__(self):
        self.crop_calls = []

    def _one(self, image):
        v = float(image.mean())
        return Detections(np.array([[v, v, v + 10, v + 10]], np.float32), np.array([0.9], np.float32),
                          landmarks=np.full((1, 5, 2), v, np.float32))

    def detect(self, frame):
        return self._one(frame)

    def detect_crops(self, crops, input_size):
        self.crop_calls.append((len(crops), input_size))
        return [self._one(c) for c in crops]


def test_crops_are_cached_by_content_and_input_size(tmp_path):
    crops = [np.full((32, 32, 3), v, np.uint8) for v in (10, 20, 30)]
    inner = CountingDetector()
    det = CachedDetector(inner, ModelCache(tmp_path / "c.npz"))
    first = det.detect_crops(crops[:2], 128)
    again = det.detect_crops(crops, 128)                      # two cached, one new
    assert inner.crop_calls == [(2, 128), (1, 128)]
    assert [float(d.xyxy[0, 0]) for d in again] == [10.0, 20.0, 30.0]
    np.testing.assert_array_equal(first[1].landmarks, again[1].landmarks)
    det.detect_crops(crops[:1], 160)                          # another input size is another answer
    assert inner.crop_calls[-1] == (1, 160)
    det._cache.save()

    inner2 = CountingDetector()
    replayed = CachedDetector(inner2, ModelCache(tmp_path / "c.npz")).detect_crops(crops, 128)
    assert inner2.crop_calls == []                            # all from the file
    assert [float(d.xyxy[0, 0]) for d in replayed] == [10.0, 20.0, 30.0]
