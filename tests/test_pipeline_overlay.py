"""Overlay: labels readable at every resolution, inside the frame, Unknown in another colour."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.overlay import Overlay


def result(boxes, names, ids=None, scores=None):
    n = len(boxes)
    return SimpleNamespace(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
                           track_ids=np.arange(1, n + 1) if ids is None else np.asarray(ids),
                           names=list(names), scores=np.full(n, 0.71, np.float32) if scores is None else scores)


@pytest.mark.parametrize("width, height", [(640, 480), (854, 480), (1920, 1080), (3840, 2160)])
@pytest.mark.parametrize("where", ["top-left", "top-right", "bottom-right", "outside", "centre"])
def test_labels_stay_inside_the_frame(width, height, where):
    s = min(width, height)
    box = {"top-left": [0, 0, s * 0.1, s * 0.1],
           "top-right": [width - s * 0.05, 0, width + 30, s * 0.1],
           "bottom-right": [width - 20, height - 10, width + 50, height + 40],
           "outside": [-100, -100, -10, -10],
           "centre": [width / 2, height / 2, width / 2 + s * 0.2, height / 2 + s * 0.2]}[where]
    overlay = Overlay()
    scene = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = overlay.draw_label(scene, overlay.label(123, "lin_manuel_miranda", 0.71),
                                        (box[0], box[1]), overlay.known_color)
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    overlay.annotate(scene, result([box], ["lin_manuel_miranda"]))   # must not raise either


def test_label_size_scales_with_resolution():
    overlay = Overlay()
    heights = {}
    for w, h in [(854, 480), (3840, 2160)]:
        scene = np.zeros((h, w, 3), np.uint8)
        x1, y1, x2, y2 = overlay.draw_label(scene, "#1 Unknown", (w / 2, h / 2), overlay.unknown_color)
        heights[h] = (y2 - y1) / h
    # The label takes about the same fraction of the frame at 480p and at 4K.
    assert heights[2160] == pytest.approx(heights[480], rel=0.35)


def test_a_label_wider_than_the_frame_is_shrunk_to_fit():
    overlay = Overlay()
    scene = np.zeros((120, 160, 3), np.uint8)
    x1, _, x2, _ = overlay.draw_label(scene, "#12345 a_really_long_person_name_here 0.99", (50, 60),
                                      overlay.known_color)
    assert 0 <= x1 and x2 <= 160


def test_unknown_people_are_drawn_in_another_colour_with_the_unknown_label():
    overlay = Overlay(known_color=(0, 255, 0), unknown_color=(0, 0, 255), show_fps=False)
    assert overlay.label(3, None, 0.2) == "#3 Unknown"
    assert overlay.label(3, "ada", 0.8123) == "#3 ada 0.81"
    scene = np.zeros((480, 640, 3), np.uint8)
    overlay.annotate(scene, result([[100, 200, 200, 300], [400, 200, 500, 300]], ["ada", None]))
    assert tuple(scene[250, 100]) == (0, 255, 0)      # left edge of the named box
    assert tuple(scene[250, 400]) == (0, 0, 255)      # left edge of the unknown box


def test_fps_readout_is_drawn_only_when_enabled():
    scene = np.zeros((480, 640, 3), np.uint8)
    Overlay(show_fps=False).draw_fps(scene, 30.0)
    assert not scene.any()
    Overlay().draw_fps(scene, 30.0)
    assert scene[:40, :150].any()


@pytest.mark.parametrize("keyword, value", [
    ("known_color", (1, 2)), ("unknown_color", (0, 0, 300)), ("text_color", "white"),
    ("font_scale", 0), ("line_thickness", 0), ("unknown_label", 5),
])
def test_bad_keywords(keyword, value):
    with pytest.raises(ValueError, match=keyword):
        Overlay(**{keyword: value})
