"""Query speed and recall of :class:`gallery.index.GalleryIndex` against large random galleries.

A gallery of ``M`` random 512-d unit vectors, ``per_person`` per person: each
person is a random unit centre and each of its embeddings ``0.8 * centre +
0.6 * noise`` (a random unit noise), normalised, so two faces of one person
have a cosine near 0.64 as ArcFace's same-person pairs do. A query is a new
view of a random enrolled person drawn the same way (pure random queries would
have no true nearest person to recall). For each size:

* the time of ``GalleryIndex.query`` for one batch of ``batch`` queries, median
  of ``repeats`` runs after one warm-up, wall-clock and the process's CPU time
  (on a shared machine the wall-clock includes waiting for a core); exact
  search below the index's ``exact_below``, the vector index from there on;
* recall@1: the share of ``recall_queries`` queries whose best person is exact
  search's;
* with a vector index, the time to add ``add`` more embeddings to it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from gallery.index import SCORE_MODES, GalleryIndex
from tracker.checks import check_choice, check_int
from tracker.vectors import random_unit_vectors  # noqa: F401  (re-exported: evaluation.bench imports it from here)

logger = logging.getLogger(__name__)

#: Weight of the person's centre in each of its random embeddings (same-person cosine about its square).
CENTRE_WEIGHT = 0.8


@dataclass(frozen=True)
class BenchResult:
    """Timing and recall of one gallery size."""

    embeddings: int
    people: int
    batch: int
    score_mode: str
    build_s: float
    query_ms_median: float
    query_ms_min: float
    query_cpu_ms_median: float = 0.0
    search: str = "exact"
    recall_at_1: float = 1.0
    add_s: Optional[float] = None
    added: int = 0


def person_views(centres: np.ndarray, person: np.ndarray, rng: np.random.Generator,
                 chunk: int = 65536) -> np.ndarray:
    """``(len(person), D)`` unit vectors ``CENTRE_WEIGHT * centre + sqrt(1 - w^2) * noise``, made in blocks."""
    out = random_unit_vectors(len(person), centres.shape[1], rng, chunk=chunk)
    noise = np.float32(np.sqrt(1.0 - CENTRE_WEIGHT ** 2))
    for start in range(0, len(person), chunk):
        block = out[start:start + chunk]
        block *= noise
        block += np.float32(CENTRE_WEIGHT) * centres[person[start:start + chunk]]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return out


def benchmark_query(sizes: Sequence[int] = (1_000, 100_000, 1_000_000), *, batch: int = 16, dim: int = 512,
                    per_person: int = 10, repeats: int = 5, score_mode: str = "mean", recall_queries: int = 1000,
                    add: int = 10_000, seed: int = 0, **index_keywords) -> list[BenchResult]:
    """Time one query batch against galleries of each size in ``sizes`` (``index_keywords`` go to the index)."""
    for name, value in (("batch", batch), ("dim", dim), ("per_person", per_person), ("repeats", repeats),
                        ("recall_queries", recall_queries), ("add", add)):
        check_int(name, value, 1)
    check_choice("score_mode", score_mode, SCORE_MODES)
    if any(int(m) < 1 for m in sizes):
        raise ValueError(f"sizes must be positive, got {list(sizes)}")
    rng = np.random.default_rng(seed)
    results = []
    for m in sizes:
        results.append(_bench_size(int(m), rng, batch=batch, dim=dim, per_person=per_person, repeats=repeats,
                                   score_mode=score_mode, recall_queries=recall_queries, add=add, **index_keywords))
        logger.info("%d embeddings: %.2f ms median", m, results[-1].query_ms_median)
    return results


def _bench_size(m: int, rng: np.random.Generator, *, batch: int, dim: int, per_person: int, repeats: int,
                score_mode: str, recall_queries: int, add: int, **index_keywords) -> BenchResult:
    n_people = max(1, -(-m // per_person))
    centres = random_unit_vectors(n_people, dim, rng)
    vectors = person_views(centres, np.arange(m) // per_person, rng)
    width = len(str(n_people))
    names = [f"p{i // per_person:0{width}d}" for i in range(m)]   # already grouped by person
    t0 = time.perf_counter()
    index = GalleryIndex(names, vectors, score_mode=score_mode, **index_keywords)
    build = time.perf_counter() - t0
    del names
    queries = person_views(centres, rng.integers(0, n_people, recall_queries), rng)
    times, cpu = [], []
    for k in range(repeats + 1):                                  # the first run is the warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        index.query(queries[k * batch % len(queries):][:batch])
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    times, cpu = times[1:], cpu[1:]
    recall = _recall(index, queries, batch)
    add_s = None
    if index.vector_index is not None:
        extra = person_views(centres, rng.integers(0, n_people, add), rng)
        t0 = time.perf_counter()
        index.vector_index.add(np.arange(m, m + add), extra)
        add_s = time.perf_counter() - t0
    return BenchResult(m, len(index.people), batch, score_mode, build, float(np.median(times)), float(np.min(times)),
                       float(np.median(cpu)), "exact" if index.vector_index is None else "index", recall, add_s,
                       add if add_s is not None else 0)


def _recall(index: GalleryIndex, queries: np.ndarray, batch: int) -> float:
    """Share of ``queries`` whose best person is that of exact search (in batches of ``batch``)."""
    found = np.concatenate([index.query(queries[s:s + batch]).person for s in range(0, len(queries), batch)])
    exact = np.concatenate([index.query(queries[s:s + 100], exact=True).person for s in range(0, len(queries), 100)])
    return float(np.mean(found == exact))


def format_bench(results: Sequence[BenchResult]) -> str:
    """The results as a plain-text table."""
    lines = [f"{'embeddings':>10s} {'people':>8s} {'batch':>5s} {'mode':>5s} {'search':>6s} {'build s':>8s}"
             f" {'query ms (median)':>18s} {'min':>8s} {'cpu ms':>7s} {'recall@1':>8s} {'add s':>12s}"]
    for r in results:
        added = "-" if r.add_s is None else f"{r.add_s:.2f} ({r.added})"
        lines.append(f"{r.embeddings:10d} {r.people:8d} {r.batch:5d} {r.score_mode:>5s} {r.search:>6s}"
                     f" {r.build_s:8.2f} {r.query_ms_median:18.2f} {r.query_ms_min:8.2f} {r.query_cpu_ms_median:7.2f}"
                     f" {r.recall_at_1:8.3f}"
                     f" {added:>12s}")
    return "\n".join(lines)
