"""Matching faces against the gallery: all queries against all embeddings at once.

Scores are **cosine similarities** in ``[-1, 1]`` (higher = more alike); the
embeddings are L2-normalised, so a similarity is a dot product and a whole
batch is one matrix product. A person's score is, by ``score_mode``:

``"max"``
    the best single enrolled embedding of that person;
``"mean"``
    the person's mean template (the normalised mean of its embeddings, the
    founders' "averaging a person's encodings");
``"blend"``
    the average of the two.

The margin is the best person's score minus the runner-up's (with a single
enrolled person the runner-up scores 0, the similarity of unrelated faces).

From ``exact_below`` embeddings on, a query no longer meets every row: a
:class:`gallery.vector_index.VectorIndex` finds the ``candidates`` most similar
embeddings, their people are scored exactly as above, and every other person
gets a score just below the least similar of the embeddings found. The best
person is that of exact search whenever the index finds one of that person's
near embeddings (recall against exact search: ``python -m gallery bench``),
and so is the margin whenever the runner-up is among the candidates, as a
look-alike is; a runner-up at strangers' level may be missed, and the margin
is then larger by the spread of strangers' scores.
"""
from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Optional, Sequence

import numpy as np

from gallery.vector_index import VectorIndex, open_synced
from tracker.checks import check_choice, check_int
from tracker.vectors import l2_normalize  # noqa: F401  (re-exported: gallery modules import it from here)

#: The per-person score rules :class:`GalleryIndex` knows.
SCORE_MODES = ("max", "mean", "blend")


@dataclass(frozen=True)
class Matches:
    """The best gallery person for each of ``N`` query embeddings.

    Attributes
    ----------
    names : list of (str or None)
        ``N`` best person names, ``None`` when the gallery is empty or the
        match did not pass the threshold/margin given to :meth:`GalleryIndex.match`.
    person : ndarray
        ``(N,)`` int64 index of the best person in ``GalleryIndex.people`` (-1: none).
    score : ndarray
        ``(N,)`` float32 cosine similarity to the best person.
    margin : ndarray
        ``(N,)`` float32 best score minus runner-up score.
    """

    names: list
    person: np.ndarray
    score: np.ndarray
    margin: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


class GalleryIndex:
    """Enrolled embeddings held in memory for matching.

    Parameters
    ----------
    names : sequence of str
        ``M`` person names, one per embedding row.
    vectors : ndarray
        An ``(M, D)`` matrix of embeddings (normalised here).
    score_mode : {"mean", "max", "blend"}
        How a person's score is made from its embeddings (see the module doc;
        why ``"mean"`` is the default: ``docs/tuning.md``).
    exact_below : int
        Galleries of fewer embeddings are searched exactly; from this size on through a
        vector index (the crossover measured in ``configs/default.yaml``).
    nprobe : int
        Cells of the vector index scanned per query (recall against speed, measured there too).
    candidates : int
        Embeddings the vector index returns per query; their people are scored exactly.
    ids : ndarray, optional
        ``(M,)`` distinct int64 ids of the rows (the gallery's embedding ids); default ``0..M-1``.
        Positional only, like ``vector_index``: data, not settings (no YAML key).
    vector_index : VectorIndex, optional
        An index already holding exactly ``ids`` (from :func:`gallery.vector_index.open_synced`);
        built here when needed and not given.

    Notes
    -----
    A float32 ``vectors`` that is already grouped by person and normalised
    is kept without a copy (a 1M x 512 gallery is 2 GB): do not change it
    afterwards.
    """

    def __init__(
        self,
        names: Sequence[str],
        vectors: np.ndarray,
        ids: Optional[np.ndarray] = None,
        vector_index: Optional[VectorIndex] = None,
        /,
        *,
        score_mode: str = "mean",
        exact_below: int = 100_000,
        nprobe: int = 32,
        candidates: int = 32,
    ) -> None:
        check_choice("score_mode", score_mode, SCORE_MODES)
        for name, value in (("exact_below", exact_below), ("nprobe", nprobe), ("candidates", candidates)):
            check_int(name, value, 1)
        self.exact_below, self.nprobe, self.candidates = int(exact_below), int(nprobe), int(candidates)
        vectors, ids = _checked_rows(names, vectors, ids)
        self.score_mode = score_mode
        self.dim = int(vectors.shape[1])
        if len(names):
            people, labels = np.unique(np.asarray([str(n) for n in names]), return_inverse=True)
        else:
            people, labels = np.array([], dtype=str), np.zeros(0, np.int64)
        self.people: list[str] = [str(p) for p in people]
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        # Rows grouped by person (contiguous blocks) for reduceat; avoid copies of large matrices.
        if len(labels) > 1 and np.any(np.diff(labels) < 0):
            order = np.argsort(labels, kind="stable")
            labels, vectors, ids = labels[order], vectors[order], ids[order]
        norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
        if len(norms) and np.any(np.abs(norms - 1.0) > 1e-4):
            vectors = l2_normalize(vectors, axis=1)
        self.labels = labels
        # Start of each person's contiguous block of rows.
        self._starts = np.searchsorted(self.labels, np.arange(len(self.people)))
        if len(self.people):
            # per-person sums as one sparse (P, M) x (M, D) product (np.add.reduceat is ~15x slower here)
            from scipy.sparse import csr_matrix

            member = csr_matrix((np.ones(len(labels), np.float32), (labels, np.arange(len(labels)))),
                                shape=(len(self.people), len(labels)))
            templates = l2_normalize(np.asarray(member @ vectors))
        else:
            templates = np.zeros((0, self.dim), np.float32)
        if score_mode == "max":
            matrix = vectors
        elif score_mode == "mean":
            matrix = templates
        else:
            matrix = np.concatenate([vectors, templates], axis=0)
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._n_rows = len(vectors)
        self._ends = np.append(self._starts[1:], len(labels)).astype(np.int64)
        self._id_order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._id_order]
        self.vector_index = self._vector_index(vector_index, ids, vectors)

    def _vector_index(self, given: Optional[VectorIndex], ids: np.ndarray, vectors: np.ndarray):
        """``given``, a new :class:`VectorIndex` from ``exact_below`` rows on, or None (exact search)."""
        if self._n_rows < self.exact_below:
            return None
        if given is None:
            return VectorIndex(self.dim, nprobe=self.nprobe).build(ids, vectors)
        if not np.array_equal(given.ids, self._sorted_ids):
            raise ValueError("vector_index must hold exactly the ids of the gallery's rows")
        given.nprobe = self.nprobe
        return given

    @classmethod
    def from_store(cls, store, *, index_file: Optional[os.PathLike] = None, **keywords) -> "GalleryIndex":
        """An index of every embedding in a :class:`gallery.store.GalleryStore`.

        From ``exact_below`` embeddings on, the vector index is read from ``index_file``
        (default: the gallery's path with ``.ivf`` appended), brought in step with the
        gallery, or rebuilt when it is missing or unusable (:func:`gallery.vector_index.open_synced`).
        """
        ids, names, vectors = store.embeddings_with_ids()
        if len(names) == 0:
            vectors = np.zeros((0, store.dim), np.float32)
        given = None
        if len(names) >= keywords.get("exact_below", cls.__init__.__kwdefaults__["exact_below"]):
            path = index_file if index_file is not None else store.path.with_name(store.path.name + ".ivf")
            nprobe = keywords.get("nprobe", cls.__init__.__kwdefaults__["nprobe"])
            given, _ = open_synced(path, store.stamp(), ids, vectors, nprobe=nprobe)
        return cls(names, vectors, ids, given, **keywords)

    def __len__(self) -> int:
        """Number of enrolled embeddings ``M``."""
        return self._n_rows

    @property
    def empty(self) -> bool:
        """True when nobody is enrolled."""
        return not self.people

    def person_scores(self, queries: np.ndarray, *, exact: bool = False) -> np.ndarray:
        """Score of every query against every person.

        Parameters
        ----------
        queries : ndarray
            An ``(N, D)`` (or ``(D,)``) matrix of embeddings (normalised here).
        exact : bool
            Meet every row even when the gallery has a vector index (the reference of recall).

        Returns
        -------
        ndarray
            An ``(N, P)`` float32 matrix of cosine similarities, ``P = len(people)``.
        """
        q = self._checked_queries(queries)
        if len(q) == 0 or self.empty:
            return np.zeros((len(q), len(self.people)), np.float32)
        if self.vector_index is not None and not exact:
            out = np.empty((len(q), len(self.people)), np.float32)
            for i, (people, scores, floor) in enumerate(self._candidates(q)):
                out[i] = floor
                out[i, people] = scores
            return out
        return self._combine(q @ self._matrix.T, self._starts)   # the one matrix product, (N, rows)

    def _checked_queries(self, queries: np.ndarray) -> np.ndarray:
        """``queries`` as an ``(N, D)`` float32 matrix of unit rows (``ValueError`` on another shape)."""
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (N, {self.dim}), got {np.shape(queries)}")
        return l2_normalize(q) if len(q) else q

    def _combine(self, sims: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Person scores from similarities to rows laid out like ``_matrix`` (blocks from ``starts``)."""
        if self.score_mode == "mean":
            return sims
        best = np.maximum.reduceat(sims[:, : sims.shape[1] - (len(starts) if self.score_mode == "blend" else 0)],
                                   starts, axis=1)
        if self.score_mode == "max":
            return best
        return 0.5 * (best + sims[:, sims.shape[1] - len(starts):])

    def _candidates(self, q: np.ndarray):
        """For each query: its candidate people, their exact scores, and the score given to everyone else
        (just below the least similar candidate row, never above the best candidate)."""
        sims, found = self.vector_index.search(q, self.candidates)
        for i in range(len(q)):
            ok = found[i] >= 0
            people = np.unique(self.labels[self._id_order[np.searchsorted(self._sorted_ids, found[i][ok])]])
            scores = self._combine(q[i:i + 1] @ self._rows_of(people).T, self._block_starts(people))[0]
            floor = min(float(scores.max()), float(sims[i][ok].min())) if len(people) else -1.0
            yield people, scores.astype(np.float32), np.nextafter(np.float32(floor), np.float32(-np.inf))

    def _indexed_matches(self, q: np.ndarray) -> Matches:
        """:meth:`query` through the vector index without the dense ``(N, P)`` matrix (the same best and runner-up)."""
        best, score, margin = np.full(len(q), -1, np.int64), np.zeros(len(q), np.float32), np.zeros(len(q), np.float32)
        for i, (people, scores, floor) in enumerate(self._candidates(q)):
            if not len(people):
                continue
            k = int(np.argmax(scores))
            others = np.delete(scores, k)
            runner = max(float(others.max()) if len(others) else -np.inf,
                         float(floor) if len(people) < len(self.people) else -np.inf)
            best[i], score[i] = people[k], scores[k]
            margin[i] = scores[k] - (runner if len(self.people) > 1 else 0.0)
        return Matches([self.people[b] if b >= 0 else None for b in best], best, score, margin)

    def _rows_of(self, people: np.ndarray) -> np.ndarray:
        """The rows of ``_matrix`` that score ``people`` (their blocks, then their templates for "blend")."""
        if self.score_mode == "mean":
            return self._matrix[people]
        lengths = self._ends[people] - self._starts[people]
        offsets = np.repeat(self._starts[people] - np.cumsum(lengths) + lengths, lengths)
        rows = self._matrix[offsets + np.arange(int(lengths.sum()))]
        if self.score_mode == "max":
            return rows
        return np.concatenate([rows, self._matrix[self._n_rows + people]])

    def _block_starts(self, people: np.ndarray) -> np.ndarray:
        """Where each person's block starts in :meth:`_rows_of`'s rows."""
        lengths = self._ends[people] - self._starts[people]
        return (np.cumsum(lengths) - lengths).astype(np.int64)

    def query(self, queries: np.ndarray, *, exact: bool = False) -> Matches:
        """Best person, score and margin for each query (no threshold; ``exact``: see :meth:`person_scores`)."""
        if self.vector_index is not None and not exact and not self.empty:
            return self._indexed_matches(self._checked_queries(queries))
        scores = self.person_scores(queries, exact=exact)
        return _best_of(scores, self.people)

    def match(self, queries: np.ndarray, *, similarity_threshold: float, min_margin: float = 0.0) -> Matches:
        """Like :meth:`query`, with ``names[i] = None`` where the score is below
        ``similarity_threshold`` or the margin below ``min_margin``."""
        m = self.query(queries)
        ok = (m.person >= 0) & (m.score >= similarity_threshold) & (m.margin >= min_margin)
        names = [n if k else None for n, k in zip(m.names, ok)]
        return Matches(names=names, person=m.person, score=m.score, margin=m.margin)


def _checked_rows(names: Sequence[str], vectors: np.ndarray, ids: Optional[np.ndarray]) -> tuple:
    """``vectors`` as float32 and ``ids`` as int64 (``0..M-1`` when None), checked against ``names``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must have shape (M, D), got {vectors.shape}")
    if len(names) != len(vectors):
        raise ValueError(f"names has {len(names)} entries but vectors has {len(vectors)} rows")
    if not np.all(np.isfinite(vectors)):
        raise ValueError("vectors contain NaN or infinite values")
    ids = np.arange(len(names), dtype=np.int64) if ids is None else np.asarray(ids, np.int64).reshape(-1)
    if len(ids) != len(names) or len(np.unique(ids)) != len(ids):
        raise ValueError(f"ids must be {len(names)} distinct integers, got {len(ids)} "
                         f"({len(np.unique(ids))} distinct)")
    return vectors, ids


def _best_of(scores: np.ndarray, people: Sequence[str]) -> Matches:
    """Best and runner-up per row of an ``(N, P)`` score matrix."""
    n, p = scores.shape
    if p == 0:
        zeros = np.zeros(n, np.float32)
        return Matches([None] * n, np.full(n, -1, np.int64), zeros, zeros.copy())
    best = np.argmax(scores, axis=1)
    top = scores[np.arange(n), best]
    if p == 1:
        runner = np.zeros(n, np.float32)
    else:
        runner = np.partition(scores, p - 2, axis=1)[:, p - 2]
    return Matches(
        names=[people[i] for i in best],
        person=best.astype(np.int64),
        score=top.astype(np.float32),
        margin=(top - runner).astype(np.float32),
    )


def best_of(scores: np.ndarray, people: Sequence[str]) -> Matches:
    """Best person, score and margin for each row of an ``(N, P)`` score matrix."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2 or scores.shape[1] != len(people):
        raise ValueError(f"scores must have shape (N, {len(people)}), got {scores.shape}")
    return _best_of(scores, people)

