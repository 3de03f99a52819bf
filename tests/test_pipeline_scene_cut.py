"""Shot-cut detection: synthetic cuts, parameters, and the real cuts of the Hamilton clip."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.scene_cut import HistogramSceneCutDetector


def coloured(bgr, noise_seed=None):
    img = np.empty((120, 160, 3), np.uint8)
    img[:] = bgr
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
        img = np.clip(img.astype(int) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    return img


def test_a_colour_change_is_one_cut_and_noise_is_none():
    d = HistogramSceneCutDetector(threshold=0.25, min_gap_frames=0)
    flags = [d.update(coloured((30, 120, 200), i)) for i in range(10)]
    flags += [d.update(coloured((200, 60, 20), i)) for i in range(10)]
    assert flags.count(True) == 1 and flags.index(True) == 10


def test_min_gap_suppresses_flashes_and_reset_forgets_the_previous_frame():
    d = HistogramSceneCutDetector(threshold=0.25, min_gap_frames=5)
    a, b = coloured((30, 120, 200)), coloured((200, 60, 20))
    flags = [d.update(f) for f in [a, b, a, b, a, a, a, a, a, b]]
    assert flags == [False, True, False, False, False, False, False, False, False, True]
    d.reset()
    assert d.update(b) is False


@pytest.mark.parametrize("keyword, value", [
    ("threshold", 0.0), ("threshold", 1.0), ("hue_bins", 1), ("saturation_bins", 1),
    ("analysis_width", 8), ("min_gap_frames", -1),
])
def test_bad_keywords(keyword, value):
    with pytest.raises(ValueError, match=keyword):
        HistogramSceneCutDetector(**{keyword: value})


def cuts_in(path, **kw):
    cap = cv2.VideoCapture(str(path))
    d = HistogramSceneCutDetector(**kw)
    found, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if d.update(frame):
            found.append(i)
        i += 1
    return found, i


@pytest.mark.integration
def test_hamilton_cuts_are_found_exactly_and_other_videos_have_none(shared_data):
    # data/MANIFEST.md: hard cuts at frames 20, 82 and 211.
    found, n = cuts_in(shared_data / "video" / "short_hamilton_clip.mp4")
    assert n == 275 and found == [20, 82, 211]
    for path in [shared_data / "video" / "facenet_pytorch_pedestrians.mp4",
                 *sorted((shared_data / "video" / "talking_heads").glob("*.mp4"))]:
        assert cuts_in(path)[0] == [], path.name
