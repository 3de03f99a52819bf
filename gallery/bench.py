"""Query speed of :class:`gallery.index.GalleryIndex` against large random galleries.

One batch of ``batch`` query embeddings against ``M`` enrolled random unit
vectors (``per_person`` per person): the time of ``GalleryIndex.query``
(the matrix product, the per-person reduction and the best/runner-up),
median of ``repeats`` runs after one warm-up.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gallery.index import SCORE_MODES, GalleryIndex
from tracker.checks import check_choice, check_int
from tracker.vectors import random_unit_vectors  # noqa: F401  (re-exported: evaluation.bench imports it from here)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchResult:
    """Timing of one gallery size."""

    embeddings: int
    people: int
    batch: int
    score_mode: str
    build_s: float
    query_ms_median: float
    query_ms_min: float


def benchmark_query(sizes: Sequence[int] = (1_000, 100_000, 1_000_000), *, batch: int = 16, dim: int = 512,
                    per_person: int = 10, repeats: int = 5, score_mode: str = "mean",
                    seed: int = 0) -> list[BenchResult]:
    """Time one query batch against galleries of each size in ``sizes``."""
    for name, value in (("batch", batch), ("dim", dim), ("per_person", per_person), ("repeats", repeats)):
        check_int(name, value, 1)
    check_choice("score_mode", score_mode, SCORE_MODES)
    if any(int(m) < 1 for m in sizes):
        raise ValueError(f"sizes must be positive, got {list(sizes)}")
    rng = np.random.default_rng(seed)
    queries = random_unit_vectors(batch, dim, rng)
    results = []
    for m in sizes:
        m = int(m)
        vectors = random_unit_vectors(m, dim, rng)
        n_people = max(1, m // per_person)
        width = len(str(n_people))
        names = [f"p{i // per_person:0{width}d}" for i in range(m)]   # already grouped by person
        t0 = time.perf_counter()
        index = GalleryIndex(names, vectors, score_mode=score_mode)
        build = time.perf_counter() - t0
        del names
        index.query(queries)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            index.query(queries)
            times.append((time.perf_counter() - t0) * 1e3)
        results.append(BenchResult(m, len(index.people), batch, score_mode, build,
                                   float(np.median(times)), float(np.min(times))))
        logger.info("%d embeddings: %.2f ms median", m, results[-1].query_ms_median)
        del index, vectors
    return results


def format_bench(results: Sequence[BenchResult]) -> str:
    """The results as a plain-text table."""
    lines = [f"{'embeddings':>10s} {'people':>8s} {'batch':>5s} {'mode':>5s} {'build s':>8s}"
             f" {'query ms (median)':>18s} {'min':>8s}"]
    for r in results:
        lines.append(f"{r.embeddings:10d} {r.people:8d} {r.batch:5d} {r.score_mode:>5s} {r.build_s:8.2f}"
                     f" {r.query_ms_median:18.2f} {r.query_ms_min:8.2f}")
    return "\n".join(lines)
