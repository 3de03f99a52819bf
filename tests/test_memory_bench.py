"""The memory bench's parts, and that the long-lived structures of a long run stay bounded.

The bounded-structures test drives the real tracker, identifier and run loop (fake detector and
embedder from ``test_pipeline_runner``) through thousands of frames in which people keep coming
and going: a container that kept something per track ever seen would grow with the run and fail.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from evaluation.memory_bench import LoopedSource, MemoryProbe, format_memory, structure_sizes
from gallery.identifier import Identifier
from gallery.index import GalleryIndex
from pipeline.events import EventWriter
from pipeline.loop import run
from pipeline.runner import Pipeline
from test_pipeline_runner import (BASELINE, FakeDetector, FakeEmbedder, H, ListSink, ListSource, Scene, W,
                                  frame_time, unit)
from tracker.tracker import Tracker


def tiny_clip(path, frames=10):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for t in range(frames):
        writer.write(np.full((48, 64, 3), 20 * t, np.uint8))
    writer.release()
    return path


def test_looped_source_numbers_on_and_marks_each_restart(tmp_path):
    source = LoopedSource(tiny_clip(tmp_path / "c.avi"), loops=3)
    frames = list(source)
    source.close()
    assert [f.index for f in frames] == list(range(30))
    stamps = [f.timestamp for f in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert [f.index for f in frames if f.discontinuity] == [10, 20]
    assert frames[10].image.mean() < frames[9].image.mean()           # the file started again
    with pytest.raises(ValueError, match="loops"):
        LoopedSource(tmp_path / "c.avi", loops=0)


def test_memory_probe_checkpoints_and_log(tmp_path):
    class P:
        tracker = None

    probe = MemoryProbe(P(), reference=4, every=5, log_path=tmp_path / "m.jsonl")
    for _ in range(12):
        probe(None)
    probe.take()
    assert [c.frame for c in probe.checkpoints] == [1, 4, 5, 10, 12]
    assert all(c.rss_mb > 0 for c in probe.checkpoints)
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == [1, 4, 5, 10, 12]
    table = format_memory(probe.checkpoints, 4)
    assert "| 4 |" in table and "1.0" in table.splitlines()[3]
    with pytest.raises(ValueError):
        MemoryProbe(P(), reference=0)


def comings_and_goings(people: int, stay: int, gap: int) -> Scene:
    """``people`` people, one after another (two on screen at a time), each for ``stay`` frames."""
    rows = []
    for k in range(people):
        first = k * gap
        rows.append((100 + k, 20 + (k % 3) * 90, 60, 0.5, 0.0, 50, first, first + stay))
    return Scene(rows)


def test_a_long_run_keeps_every_long_lived_structure_bounded(tmp_path):
    frames = 3000
    scene = comings_and_goings(people=frames // 20, stay=30, gap=20)
    index = GalleryIndex(["p100", "p101"], np.stack([unit(100), unit(101)]))
    identifier = Identifier(index, similarity_threshold=0.5, min_margin=0.05, min_observations=2,
                            max_ended_unknowns=20)
    tracker = Tracker(n_init=2, max_age=5, reid_min_confidence=0.0, lost_buffer_size=10, lost_max_age=200)
    pipeline = Pipeline(FakeDetector(scene), FakeEmbedder(scene), tracker, identifier, None, **BASELINE)
    pipeline.detector.calls = _NoList()                   # the fake's call log is not the pipeline's memory
    sizes = []

    def on_frame(result):
        if result.frame_index % 100 == 99:
            sizes.append(structure_sizes(pipeline))

    events = EventWriter(tmp_path / "ev.jsonl")
    summary = run(pipeline, ListSource(scene, frames), [ListSinkless()], event_writer=events, on_frame=on_frame)
    assert summary.frames == frames and summary.track_ids >= frames // 20 - 5      # ~150 people came and went
    first, late = sizes[len(sizes) // 3], sizes[len(sizes) // 3:]
    bounds = {"tracks": 6, "lost": 10, "appearance_samples": 16, "identifier_tracks": 16, "ended_unknowns": 20,
              "shown_boxes": 6, "reuse": 6, "young_features": 6}
    for key, bound in bounds.items():
        assert max(s[key] for s in late) <= bound, (key, [s[key] for s in late])
    assert first["lost"] == 10                            # the buffer was full already, and stayed so
    assert len(events._numbers) <= 6                      # open appearances only


class _NoList(list):
    def append(self, item):
        pass


class ListSinkless(ListSink):
    """A sink that counts frames without keeping them."""

    def write(self, frame):
        return True


def test_the_fakes_see_the_frame_numbers():
    assert frame_time(Scene([]).frame(300)) == 300 and (H, W) == Scene([]).frame(0).shape[:2]
