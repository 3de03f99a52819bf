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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tracker.checks import check_choice
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
        *,
        score_mode: str = "mean",
    ) -> None:
        check_choice("score_mode", score_mode, SCORE_MODES)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must have shape (M, D), got {vectors.shape}")
        if len(names) != len(vectors):
            raise ValueError(f"names has {len(names)} entries but vectors has {len(vectors)} rows")
        if not np.all(np.isfinite(vectors)):
            raise ValueError("vectors contain NaN or infinite values")
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
            labels, vectors = labels[order], vectors[order]
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

    @classmethod
    def from_store(cls, store, **keywords) -> "GalleryIndex":
        """An index of every embedding in a :class:`gallery.store.GalleryStore`."""
        names, vectors = store.embeddings()
        if len(names) == 0:
            vectors = np.zeros((0, store.dim), np.float32)
        return cls(names, vectors, **keywords)

    def __len__(self) -> int:
        """Number of enrolled embeddings ``M``."""
        return self._n_rows

    @property
    def empty(self) -> bool:
        """True when nobody is enrolled."""
        return not self.people

    def person_scores(self, queries: np.ndarray) -> np.ndarray:
        """Score of every query against every person.

        Parameters
        ----------
        queries : ndarray
            An ``(N, D)`` (or ``(D,)``) matrix of embeddings (normalised here).

        Returns
        -------
        ndarray
            An ``(N, P)`` float32 matrix of cosine similarities, ``P = len(people)``.
        """
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (N, {self.dim}), got {np.shape(queries)}")
        if len(q) == 0 or self.empty:
            return np.zeros((len(q), len(self.people)), np.float32)
        sims = l2_normalize(q) @ self._matrix.T  # the one matrix product, (N, rows)
        if self.score_mode == "mean":
            return sims
        best = np.maximum.reduceat(sims[:, : self._n_rows], self._starts, axis=1)
        if self.score_mode == "max":
            return best
        return 0.5 * (best + sims[:, self._n_rows:])

    def query(self, queries: np.ndarray) -> Matches:
        """Best person, score and margin for each query (no threshold)."""
        scores = self.person_scores(queries)
        return _best_of(scores, self.people)

    def match(self, queries: np.ndarray, *, similarity_threshold: float, min_margin: float = 0.0) -> Matches:
        """Like :meth:`query`, with ``names[i] = None`` where the score is below
        ``similarity_threshold`` or the margin below ``min_margin``."""
        m = self.query(queries)
        ok = (m.person >= 0) & (m.score >= similarity_threshold) & (m.margin >= min_margin)
        names = [n if k else None for n, k in zip(m.names, ok)]
        return Matches(names=names, person=m.person, score=m.score, margin=m.margin)


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

