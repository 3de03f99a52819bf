"""The run loop's output overlap: the same outputs as the sequential run, errors and stops as before.

The unit tests use the run loop's fakes (``test_pipeline_runner``); the integration test runs
``demo.py`` twice on the real Hamilton clip with the real models, ffmpeg and a gallery, once with
``loop.overlap_output: false``, and compares every output.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.events import EventWriter, OutputError, TracksWriter
from pipeline.loop import run
from pipeline.overlay import Overlay
from pipeline.sinks import SinkError
from test_pipeline_runner import ONE_PERSON, ListSink, ListSource, Scene, frame_time, make_pipeline

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CLIP = SHARED / "data" / "video" / "short_hamilton_clip.mp4"
TWO_PEOPLE = Scene([(1, 40, 60, 1.0, 0.0, 60, 0, 25), (2, 200, 60, 0.0, 0.5, 60, 5, 60)])


class ThreadSink(ListSink):
    """Records the thread of every write."""

    def __init__(self):
        super().__init__()
        self.threads = set()

    def write(self, frame):
        self.threads.add(threading.current_thread().name)
        return super().write(frame)


def run_both(tmp_path, scene, n, **kw):
    outs = {}
    for overlap in (False, True):
        d = tmp_path / str(overlap)
        d.mkdir()
        sink, seen = ThreadSink(), []
        summary = run(make_pipeline(scene), ListSource(scene, n), [sink], overlay=Overlay(),
                      event_writer=EventWriter(d / "ev.jsonl", snapshots=False), tracks_writer=TracksWriter(d / "tr.txt"),
                      on_frame=lambda r: seen.append(r.frame_index), overlap_output=overlap, **kw)
        outs[overlap] = (summary, sink, seen, d)
    return outs


#: The wall-clock fields of an event (when it was seen, not what): they differ between any two runs.
WALL_CLOCK = {"time", "first_seen", "last_seen"}


def drop_time(lines):
    """Event lines without their wall-clock fields; everything else must be equal."""
    import json
    return [{k: v for k, v in json.loads(x).items() if k not in WALL_CLOCK} for x in lines]


def test_overlapped_outputs_equal_the_sequential_ones_frame_for_frame(tmp_path):
    outs = run_both(tmp_path, TWO_PEOPLE, 60)
    (s0, sink0, seen0, d0), (s1, sink1, seen1, d1) = outs[False], outs[True]
    assert s0.frames == s1.frames == 60 and s0.stop_reason == s1.stop_reason == "end of source"
    assert len(sink0.frames) == len(sink1.frames) == 60
    assert all(np.array_equal(a, b) for a, b in zip(sink0.frames, sink1.frames))
    assert [frame_time(f) for f in sink1.frames] == list(range(60))
    assert seen0 == seen1 == list(range(60))               # on_frame: in order, after the sinks
    assert (d0 / "tr.txt").read_bytes() == (d1 / "tr.txt").read_bytes()
    ev0, ev1 = (d0 / "ev.jsonl").read_text().splitlines(), (d1 / "ev.jsonl").read_text().splitlines()
    assert len(ev0) == len(ev1) > 0 and drop_time(ev0) == drop_time(ev1)
    assert sink0.threads == {threading.current_thread().name} and sink1.threads != sink0.threads
    assert s1.stage_seconds["output_wait"] >= 0 and s0.stage_seconds["output_wait"] == 0


@pytest.mark.parametrize("overlap", [False, True])
def test_a_sink_error_ends_the_run_on_the_same_frame_with_the_same_summary(tmp_path, overlap):
    class Failing(ListSink):
        def write(self, frame):
            if len(self.frames) == 7:
                raise SinkError("cannot write out.mp4: disk full")
            return super().write(frame)

    sink = Failing()
    tracks = TracksWriter(tmp_path / "tr.txt")
    summary = run(make_pipeline(ONE_PERSON), ListSource(ONE_PERSON, 30), [sink], tracks_writer=tracks,
                  overlap_output=overlap)
    assert summary.stop_reason == "write error"
    assert summary.output_errors == ["cannot write out.mp4: disk full"]
    assert summary.frames == 8 and len(sink.frames) == 7 and sink.closed
    frames = {int(r.split(",")[0]) for r in (tmp_path / "tr.txt").read_text().splitlines()}
    assert max(frames) <= 8                                # no row of a frame after the failed one


@pytest.mark.parametrize("overlap", [False, True])
def test_a_bug_in_the_output_thread_is_raised_from_run_and_everything_is_closed(overlap):
    class Broken(ListSink):
        def write(self, frame):
            if len(self.frames) == 3:
                raise RuntimeError("overlay bug")
            return super().write(frame)

    sink, source = Broken(), ListSource(ONE_PERSON, 20)
    with pytest.raises(RuntimeError, match="overlay bug"):
        run(make_pipeline(ONE_PERSON), source, [sink], overlap_output=overlap)
    assert sink.closed and source.closed and len(sink.frames) == 3


@pytest.mark.parametrize("overlap", [False, True])
def test_a_sink_asking_to_stop_stops_on_the_same_frame(overlap):
    class Closer(ListSink):
        def write(self, frame):
            super().write(frame)
            return len(self.frames) < 5

    seen = []
    summary = run(make_pipeline(ONE_PERSON), ListSource(ONE_PERSON, 50), [Closer()],
                  on_frame=lambda r: seen.append(r.frame_index), overlap_output=overlap)
    assert summary.frames == 5 and summary.stop_reason == "window closed" and seen == [0, 1, 2, 3]


def test_a_main_thread_only_sink_turns_the_overlap_off():
    class Window(ThreadSink):
        main_thread_only = True

    sink = Window()
    run(make_pipeline(ONE_PERSON), ListSource(ONE_PERSON, 10), [sink], overlap_output=True)
    assert sink.threads == {threading.current_thread().name} and len(sink.frames) == 10


def test_sigint_while_overlapped_writes_the_last_frame_and_closes(tmp_path):
    import signal
    sink, source = ListSink(), ListSource(ONE_PERSON, 100)

    def on_frame(result):
        if result.frame_index == 10:
            os.kill(os.getpid(), signal.SIGINT)

    summary = run(make_pipeline(ONE_PERSON), source, [sink], on_frame=on_frame, overlap_output=True)
    assert summary.stop_reason == "interrupted" and summary.stop_signal == signal.SIGINT
    assert len(sink.frames) == summary.frames and sink.closed and source.closed


# ----------------------------------------------------------------- real clip, real models, real ffmpeg
needs_real = pytest.mark.skipif(not CLIP.exists() or shutil.which("ffmpeg") is None
                                or not (SHARED / "models").is_dir(), reason="needs ../shared and ffmpeg")


def demo(out: Path, config: Path, db: Path) -> None:
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.setdefault("FACETRACK_MODELS_DIR", str(SHARED / "models"))
    cmd = [sys.executable, str(REPO / "demo.py"), "--source", str(CLIP), "--gallery", str(SHARED / "data" / "gallery"),
           "--gallery-db", str(db), "--config", str(config), "--no-show", "--quiet", "--no-remember-unknowns",
           "--max-frames", "75", "--output", str(out / "out.mp4"), "--tracks", str(out / "tracks.txt"),
           "--names", str(out / "names.csv"), "--events", str(out / "events.jsonl")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


def decoded(path: Path) -> list:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            return frames
        frames.append(image)


@needs_real
def test_demo_on_the_real_clip_writes_the_same_outputs_overlapped_and_sequential(tmp_path):
    config = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    paths = {}
    for name, overlap in (("sequential", False), ("overlapped", True)):
        config["loop"]["overlap_output"] = overlap
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(config))
    db = tmp_path / "gallery.db"
    demo(tmp_path / "seq", paths["sequential"], db)
    demo(tmp_path / "ovl", paths["overlapped"], db)
    seq, ovl = tmp_path / "seq", tmp_path / "ovl"
    for name in ("tracks.txt", "names.csv"):
        assert (seq / name).read_bytes() == (ovl / name).read_bytes(), name
    assert (seq / "tracks.txt").stat().st_size > 0
    ev_seq, ev_ovl = (seq / "events.jsonl").read_text().splitlines(), (ovl / "events.jsonl").read_text().splitlines()
    assert len(ev_seq) > 0 and drop_time(ev_seq) == drop_time(ev_ovl)
    snaps = sorted(p.relative_to(seq) for p in seq.rglob("*.jpg"))
    assert snaps == sorted(p.relative_to(ovl) for p in ovl.rglob("*.jpg"))
    assert all(filecmp.cmp(seq / p, ovl / p, shallow=False) for p in snaps)
    a, b = decoded(seq / "out.mp4"), decoded(ovl / "out.mp4")
    assert len(a) == len(b) == 75
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
