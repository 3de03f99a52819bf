"""Timings of the detector (ms per frame) and the embedder (ms per face).

Each measurement runs warm-up calls first, then ``repeats`` timed calls, and
reports the median (and the spread) so a busy shared machine distorts it less.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from tracker.checks import check_int

__all__ = ["Timing", "bench_detector", "bench_embedder", "bench_frame", "box_recall", "compare_detectors"]


@dataclass(frozen=True)
class Timing:
    """Median and spread of repeated timings, in milliseconds per unit (frame or face)."""

    label: str
    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.label}: median {self.median_ms:.2f} ms (min {self.min_ms:.2f}, max {self.max_ms:.2f}, "
                f"{self.repeats} repeats)")


def _time(fn, *, units: int, warmup: int, repeats: int, label: str, progress: bool) -> Timing:
    from tqdm import tqdm

    check_int("repeats", repeats, 1)
    check_int("warmup", warmup, 0)
    for _ in range(warmup):
        fn()
    samples: List[float] = []
    for _ in tqdm(range(repeats), desc=label, disable=None if progress else True, leave=False):  # None: off when not a TTY
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0 / units)
    return Timing(label, statistics.median(samples), min(samples), max(samples), repeats)


def bench_frame(size: int = 640, image: Optional[np.ndarray] = None) -> np.ndarray:
    """A ``(size, size, 3)`` BGR frame: ``image`` resized, or a deterministic noise image."""
    import cv2

    if image is not None:
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (7, 7), 3)


def bench_detector(detector, frame: np.ndarray, *, warmup: int = 3, repeats: int = 30,
                   progress: bool = True) -> Timing:
    """Milliseconds per ``detector.detect(frame)`` call (median of ``repeats``)."""
    h, w = frame.shape[:2]
    return _time(lambda: detector.detect(frame), units=1, warmup=warmup, repeats=repeats,
                 label=f"detector {w}x{h}", progress=progress)


def bench_embedder(embedder, *, batch_sizes: Sequence[int] = (1, 8, 16, 32), crops: Optional[np.ndarray] = None,
                   warmup: int = 2, repeats: int = 10, progress: bool = True) -> Dict[int, Timing]:
    """Milliseconds per face of ``embedder.embed_crops`` at each batch size (median of ``repeats``).

    ``embedder.batch_size`` is raised to the largest batch for the run so a
    batch is one inference call, and restored afterwards.
    """
    if crops is None:
        rng = np.random.default_rng(0)
        crops = rng.integers(0, 256, (max(batch_sizes), 112, 112, 3), dtype=np.uint8)
    saved = embedder.batch_size
    embedder.batch_size = max(max(batch_sizes), saved)
    try:
        out = {}
        for b in batch_sizes:
            batch = np.ascontiguousarray(np.resize(crops, (b,) + crops.shape[1:]))
            out[b] = _time(lambda: embedder.embed_crops(batch), units=b, warmup=warmup, repeats=repeats,
                           label=f"embedder batch {b}", progress=progress)
        return out
    finally:
        embedder.batch_size = saved


def box_recall(reference: np.ndarray, candidate: np.ndarray, iou_threshold: float = 0.5) -> int:
    """How many ``(N, 4)`` xyxy ``reference`` boxes a one-to-one match finds in ``candidate`` at IoU >= the threshold."""
    from scipy.optimize import linear_sum_assignment

    from tracker.boxes import iou_matrix

    if len(reference) == 0 or len(candidate) == 0:
        return 0
    iou = iou_matrix(np.asarray(reference, float), np.asarray(candidate, float))
    rows, cols = linear_sum_assignment(-iou)
    return int(np.sum(iou[rows, cols] >= iou_threshold))


def compare_detectors(detectors: Dict[str, object], frames: Sequence[np.ndarray], *, reference: str,
                      repeats: int = 3, iou_threshold: float = 0.5) -> Dict[str, dict]:
    """Time several detectors on the same frames, interleaved, and score their boxes against ``reference``'s.

    Each of ``repeats`` rounds runs every detector once over all ``frames``
    (the order rotated each round, so a load that comes and goes on a shared
    machine falls on all of them); a detector's figure is its median round.

    Returns
    -------
    dict
        name -> ``ms_per_frame`` (median round), ``ms_per_frame_rounds``,
        ``cpu_ms_per_frame`` (median round of this process's CPU time, all
        threads; a backend whose threads spin while waiting pays for it here),
        ``faces``, ``recall`` (of the reference's boxes at ``iou_threshold``)
        and ``precision`` (share of its boxes matching a reference box).
    """
    check_int("repeats", repeats, 1)
    if reference not in detectors:
        raise ValueError(f"reference {reference!r} is not one of the detectors {sorted(detectors)}")
    if not frames:
        raise ValueError("compare_detectors needs at least one frame")
    names = list(detectors)
    boxes = {name: [detectors[name].detect(f).xyxy for f in frames] for name in names}   # also the warm-up
    rounds: Dict[str, List[float]] = {name: [] for name in names}
    cpu: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start, cpu0 = time.perf_counter(), time.process_time()
            for f in frames:
                detectors[name].detect(f)
            rounds[name].append((time.perf_counter() - start) * 1000.0 / len(frames))
            cpu[name].append((time.process_time() - cpu0) * 1000.0 / len(frames))
    ref = boxes[reference]
    total = sum(len(b) for b in ref)
    out = {}
    for name in names:
        hits = sum(box_recall(a, b, iou_threshold) for a, b in zip(ref, boxes[name]))
        found = sum(len(b) for b in boxes[name])
        out[name] = {"ms_per_frame": statistics.median(rounds[name]), "ms_per_frame_rounds": rounds[name],
                     "cpu_ms_per_frame": statistics.median(cpu[name]),
                     "faces": found, "recall": hits / max(total, 1), "precision": hits / max(found, 1)}
    return out
