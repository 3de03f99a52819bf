"""Benchmark of ``Tracker.update()``: milliseconds per frame at 10, 50 and 200 faces.

Run ``python -m tracker.bench`` (``--help`` for options). Each scene is a
synthetic crowd of faces with 512-d embeddings drifting across a 1920x1080
frame (:mod:`tracker.synthetic`); frames are rendered before timing, so only
``update()`` is measured. The first ``--warmup`` frames (track creation and
confirmation) are excluded. Prints one line per size: median, mean and 95th
percentile ms/frame, and the confirmed tracks at the end as a sanity check.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, Sequence

import numpy as np

from tracker.synthetic import crowd, render
from tracker.tracker import Tracker


def bench_update(num_faces: int, num_frames: int = 200, warmup: int = 20, seed: int = 0, **tracker_kwargs) -> Dict:
    """Time ``Tracker.update`` on a crowd of ``num_faces`` faces.

    Returns
    -------
    dict
        ``faces``, ``median_ms``, ``mean_ms``, ``p95_ms`` per frame over the
        timed frames, and ``confirmed`` tracks at the end.
    """
    rng = np.random.default_rng(seed)
    frames = render(crowd(num_faces, rng=rng), num_frames + warmup, rng=rng)
    tracker = Tracker(**tracker_kwargs)
    times = []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        tracks = tracker.update(frame.detections, frame.scene_cut)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed * 1e3)
    times = np.asarray(times)
    return {
        "faces": num_faces,
        "median_ms": float(np.median(times)),
        "mean_ms": float(times.mean()),
        "p95_ms": float(np.percentile(times, 95)),
        "confirmed": sum(t.is_confirmed() for t in tracks),
    }


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tracker.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, nargs="+", default=[10, 50, 200], help="faces per frame")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per size")
    parser.add_argument("--warmup", type=int, default=20, help="untimed frames first")
    parser.add_argument("--budget", type=int, default=None, help="override the per-track feature budget")
    args = parser.parse_args(argv)
    kwargs = {} if args.budget is None else {"budget": args.budget}
    budget = Tracker(**kwargs).budget
    print(f"Tracker.update(), 512-d embeddings, budget={budget}, {args.frames} timed frames per size")
    print(f"{'faces':>6} {'median ms':>10} {'mean ms':>9} {'p95 ms':>8} {'confirmed':>10}")
    for n in args.faces:
        r = bench_update(n, args.frames, args.warmup, **kwargs)
        print(f"{r['faces']:>6} {r['median_ms']:>10.3f} {r['mean_ms']:>9.3f} {r['p95_ms']:>8.3f} {r['confirmed']:>10}")


if __name__ == "__main__":
    main()
