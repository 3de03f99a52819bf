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

__all__ = ["Timing", "bench_detector", "bench_embedder", "bench_frame"]


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
