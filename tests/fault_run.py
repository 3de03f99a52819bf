"""A real run loop in a real process, with a scripted pipeline, for the fault-injection tests.

``python tests/fault_run.py OUTDIR --frames N --delay S [--video NAME] [--events PATH] ...``
runs :func:`pipeline.loop.run` over synthetic frames (a moving square; two
"tracks", the second one ending at frame 20) into a real video file, events,
tracks and names, and exits like ``demo.py`` (128 + the signal, 74 on a write
error). It prints ``frame N`` to stdout as each frame is done, and the summary
as one JSON line at the end. No weights are needed, so these tests run
everywhere in seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.events import EventWriter, FrameWriters, NamesWriter, TracksWriter  # noqa: E402
from pipeline.loop import run  # noqa: E402
from pipeline.results import FrameResult  # noqa: E402
from pipeline.source_base import Frame, Source  # noqa: E402

W, H = 160, 120


class SyntheticSource(Source):
    """``frames`` frames of a moving square, ``delay`` seconds apart; frame i has i in its top-left pixel."""

    def __init__(self, frames: int, delay: float, fps: float = 25.0, live: bool = False) -> None:
        super().__init__("synthetic")
        self.fps, self.width, self.height, self.frame_count = fps, W, H, frames
        self.is_live = live
        self._i, self._frames, self._delay = 0, frames, delay
        self.closed = False

    def read(self):
        if self._i >= self._frames:
            return None
        time.sleep(self._delay)
        img = np.zeros((H, W, 3), np.uint8)
        x = 10 + (self._i * 3) % (W - 40)
        img[40:70, x:x + 30] = (0, 200, 255)
        img[:8, :8] = self._i % 256
        frame = Frame(img, self._i, self._i / self.fps)
        self._i += 1
        return frame

    def close(self):
        self.closed = True


class ScriptedPipeline:
    """Track 1 on every frame; track 2 on frames 0-19 (it ends on frame 20)."""

    def process(self, image, index, timestamp, scene_cut=None):
        ids = [1, 2] if index < 20 else [1]
        boxes = np.array([[10, 40, 40, 70], [100, 10, 130, 40]], np.float32)[:len(ids)]
        n = len(ids)
        print(f"frame {index}", flush=True)
        return FrameResult(index, timestamp, np.array(ids, np.int64), boxes, np.full(n, 0.9, np.float32),
                           ["alice", None][:n], np.full(n, 0.5, np.float32), np.zeros(n, bool),
                           detected=True, ended_ids=[2] if index == 20 else [])


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--delay", type=float, default=0.02)
    p.add_argument("--video", default="out.mp4", help="file name in OUT, or 'none'")
    p.add_argument("--events", help="events path (default OUT/events.jsonl)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--live", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    from pipeline.sinks import BackgroundSink, VideoFileSink

    source = SyntheticSource(args.frames, args.delay, live=args.live)
    sinks = [] if args.video == "none" else [
        BackgroundSink(VideoFileSink(out / args.video, fps=source.fps, backend=args.backend,
                                     pace_to_clock=args.live))]
    events = EventWriter(args.events or out / "events.jsonl", appeared=False)   # ended events only
    writers = FrameWriters(TracksWriter(out / "tracks.txt"), NamesWriter(out / "names.csv"))
    summary = run(ScriptedPipeline(), source, sinks, event_writer=events, tracks_writer=writers)
    print(json.dumps({"frames": summary.frames, "stop_reason": summary.stop_reason,
                      "stop_signal": summary.stop_signal, "output_errors": summary.output_errors}), flush=True)
    if summary.output_errors:
        return 74
    return 128 + summary.stop_signal if summary.stop_reason == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
