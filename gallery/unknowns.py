"""People the gallery does not know yet: persistent Unknown identities, naming them, negative examples.

Each *appearance* of a face that stayed Unknown (an ended track) is stored in
the gallery file with its track's quality-weighted mean embedding, its best
face crops (JPEG bytes, in the same ``0600`` file), its source and its first
and last time. Appearances are clustered incrementally: a new appearance
joins the cluster whose centroid (the weighted mean of its appearances) is at
least ``join_similarity`` away in cosine similarity, or starts a new one.
Cluster ids are SQLite ``AUTOINCREMENT`` keys, never reused, so the same
stranger is ``Unknown #17`` in every run and from every source until #17 is
named, merged or dismissed.

Whether an appearance is good enough to join or start a cluster is the
evidence model's call, made by :class:`gallery.unknown_recorder.UnknownRecorder`
before :meth:`UnknownGallery.record` (:func:`join_separation`): the faces' heights say how
far apart "same person" and "someone else" are for the track's mean, in
standard deviations (the variances of :meth:`gallery.evidence.EvidenceModel.llr`);
a track of a few tiny faces is not remembered.

A *named* appearance (the identifier gave the track a name) is kept too,
without a cluster, so that "this is not X" can be said of it
(:meth:`UnknownGallery.not_person`): its embedding becomes a *negative
example* of X, and :class:`UnknownIndex` vetoes naming X a face closer to a
negative example of X than to X.

Retention is bounded (``retention_days``, ``max_appearances``): this is
biometric data of people who never agreed to be enrolled. Every change is
one transaction of :meth:`gallery.store.GalleryStore.write`, rolled back on
any error.

Examples
--------
>>> unknowns = UnknownGallery(store)                                   # doctest: +SKIP
>>> [(c.cluster_id, c.appearances) for c in unknowns.clusters()]       # doctest: +SKIP
[(17, 4)]
>>> unknowns.name(17, "Ada Lovelace")                                  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from gallery.store import GalleryError, GalleryStore, GalleryWriter
# Re-exported: the Unknowns' API is this module.
from gallery.unknown_index import UNKNOWN_LABEL, UnknownIndex, join_separation  # noqa: F401
from tracker.checks import check_int, check_number
from tracker.vectors import l2_normalize

logger = logging.getLogger(__name__)

#: ``source_path`` of the embeddings a named cluster enrolls (``unknown-appearance:<id>``).
ENROLLED_SOURCE = "unknown-appearance:{}"
_DAY = 86400.0


@dataclass(frozen=True)
class Appearance:
    """One ended track, as the recorder hands it to :meth:`UnknownGallery.record`.

    Attributes
    ----------
    vector : ndarray
        ``(D,)`` quality-weighted mean embedding of the track.
    observations : int
        Pieces of evidence behind it.
    face_heights : tuple of float
        Face box heights (px) of the frames it was seen on (the evidence model's input).
    first_time, last_time : float
        Wall-clock seconds (``time.time()``) when it was first and last seen.
    source : str
        Where it was seen (the source's description).
    track_id : int
        The track's id in that run.
    crops : tuple of (float, bytes)
        Up to ``max_crops`` ``(score, JPEG bytes)`` of its best faces.
    named_as : str or None
        The name the identifier gave it (None: it stayed Unknown).
    """

    vector: np.ndarray
    observations: int
    face_heights: Tuple[float, ...]
    first_time: float
    last_time: float
    source: str = ""
    track_id: int = -1
    crops: Tuple[Tuple[float, bytes], ...] = ()
    named_as: Optional[str] = None


@dataclass(frozen=True)
class UnknownCluster:
    """One anonymous identity: ``cluster_id`` (shown as ``Unknown #<id>``), how many appearances,
    when it was first and last seen (wall clock) and from which sources."""

    cluster_id: int
    appearances: int
    first_seen: float
    last_seen: float
    sources: Tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return UNKNOWN_LABEL.format(self.cluster_id)


@dataclass(frozen=True)
class StoredAppearance:
    """One stored appearance (``cluster_id`` None and ``named_as`` set for a named one)."""

    appearance_id: int
    cluster_id: Optional[int]
    named_as: Optional[str]
    observations: int
    face_height: float
    source: str
    track_id: int
    first_time: float
    last_time: float


class UnknownGallery:
    """The Unknown appearances and clusters, and the negative examples, of one gallery file.

    Parameters
    ----------
    store : GalleryStore
        The open gallery (its schema has the tables, see :mod:`gallery.schema`).
    join_similarity : float
        Cosine similarity of an appearance's mean embedding to a cluster's
        centroid at or above which it joins that cluster (see
        ``configs/default.yaml`` for what it was measured on).
    split_similarity : float
        :meth:`split` re-clusters a cluster's appearances at this (stricter) similarity.
    retention_days : float
        Appearances last seen longer ago are deleted (0 keeps them forever).
    max_appearances : int
        At most this many appearances are kept, the oldest are deleted first (0: no limit).

    Whether an appearance is good enough to be remembered is decided before
    :meth:`record`, by :class:`gallery.unknown_recorder.UnknownRecorder` with the evidence model.
    """

    def __init__(self, store: GalleryStore, *, join_similarity: float = 0.5, split_similarity: float = 0.65,
                 retention_days: float = 30.0, max_appearances: int = 10000) -> None:
        if not isinstance(store, GalleryStore):
            raise ValueError(f"store must be a GalleryStore, got {type(store).__name__}")
        self.store = store
        self.join_similarity = check_number("join_similarity", join_similarity, -1, 1)
        self.split_similarity = check_number("split_similarity", split_similarity, -1, 1)
        self.retention_days = check_number("retention_days", retention_days, 0)
        self.max_appearances = check_int("max_appearances", max_appearances, 0)

    # -- recording ---------------------------------------------------------------
    def record(self, appearance: Appearance) -> Optional[int]:
        """Store one ended track; returns its cluster id (None for a named one)."""
        with self.store.write() as w:
            vec = w.unit_vector(appearance.vector)
            cluster = None
            if appearance.named_as is None:
                ids, centroids = _centroids(self.store, w.connection)
                cluster = _nearest(ids, centroids, vec, self.join_similarity)
                if cluster is None:
                    cluster = _new_cluster(w, appearance.first_time)
            _insert_appearance(w, appearance, vec, cluster)
        return cluster

    # -- reading -----------------------------------------------------------------
    def clusters(self) -> List[UnknownCluster]:
        """Every cluster with its number of appearances and first/last seen, most recently seen first."""
        rows = self.store.query(
            "SELECT cluster_id, COUNT(*), MIN(first_time), MAX(last_time), GROUP_CONCAT(DISTINCT source)"
            " FROM unknown_appearances WHERE cluster_id IS NOT NULL GROUP BY cluster_id"
            " ORDER BY MAX(last_time) DESC, cluster_id")
        return [UnknownCluster(int(c), int(n), float(f), float(t), tuple(sorted((s or "").split(","))))
                for c, n, f, t, s in rows]

    def appearances(self, cluster_id: Optional[int] = None, *, named: bool = False) -> List[StoredAppearance]:
        """The appearances of one cluster, of every cluster, or (``named``) the named ones, oldest first."""
        where, params = ("cluster_id = ?", (int(cluster_id),)) if cluster_id is not None else (
            ("named_as IS NOT NULL", ()) if named else ("cluster_id IS NOT NULL", ()))
        rows = self.store.query(
            "SELECT id, cluster_id, named_as, observations, face_height, source, track_id, first_time, last_time"
            f" FROM unknown_appearances WHERE {where} ORDER BY first_time, id", params)
        return [StoredAppearance(int(a), None if c is None else int(c), n, int(o), float(h), s or "",
                                 -1 if t is None else int(t), float(f), float(last))
                for a, c, n, o, h, s, t, f, last in rows]

    def appearance_of_track(self, track_id: int, source: Optional[str] = None) -> int:
        """The id of the latest appearance of track ``track_id`` (the ``#id`` on the overlay) of ``source``
        (any source when None)."""
        where, params = ("track_id = ?", [int(track_id)])
        if source is not None:
            where, params = where + " AND source = ?", params + [str(source)]
        rows = self.store.query(f"SELECT id FROM unknown_appearances WHERE {where} ORDER BY last_time DESC, id DESC"
                                " LIMIT 1", params)
        if not rows:
            raise GalleryError(f"no stored appearance of track #{track_id}" + (f" in {source}" if source else ""))
        return int(rows[0][0])

    def thumbnails(self, cluster_id: int, limit: int = 3) -> List[bytes]:
        """The best face crops (JPEG bytes) of a cluster's appearances, best first."""
        self._check_cluster(cluster_id)
        rows = self.store.query(
            "SELECT c.jpeg FROM unknown_crops c JOIN unknown_appearances a ON a.id = c.appearance_id"
            " WHERE a.cluster_id = ? ORDER BY c.score DESC, c.id LIMIT ?", (int(cluster_id), int(limit)))
        return [bytes(r[0]) for r in rows]

    def negatives(self) -> Dict[str, np.ndarray]:
        """Person name -> ``(K, D)`` negative examples."""
        rows = self.store.query("SELECT p.name, n.vector FROM negatives n JOIN people p ON p.id = n.person_id"
                                " ORDER BY p.name, n.id")
        out: Dict[str, list] = {}
        for name, blob in rows:
            out.setdefault(name, []).append(blob)
        return {name: self.store.vectors(blobs) for name, blobs in out.items()}

    def index(self) -> UnknownIndex:
        """The clusters' centroids and the negative examples, for the identifier."""
        ids, centroids = _centroids(self.store, None)
        return UnknownIndex(ids, centroids, self.negatives(), self.join_similarity)

    # -- changes -------------------------------------------------------------------
    def name(self, cluster_id: int, person: str) -> int:
        """Enroll the cluster's appearances as ``person`` (new or existing) and drop the cluster; returns
        the embeddings added."""
        self._check_cluster(cluster_id)
        with self.store.write() as w:
            rows = w.connection.execute("SELECT id, vector FROM unknown_appearances WHERE cluster_id = ?",
                                        (int(cluster_id),)).fetchall()
            for aid, blob in rows:
                w.add_embedding(person, np.frombuffer(blob, "<f4"), source_path=ENROLLED_SOURCE.format(aid))
            w.connection.execute("DELETE FROM unknown_clusters WHERE id = ?", (int(cluster_id),))
        return len(rows)

    def merge(self, cluster_ids: Sequence[int]) -> int:
        """Move the appearances of every cluster into the first one; returns the id kept."""
        ids = [int(c) for c in cluster_ids]
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise ValueError(f"merge needs two or more different cluster ids, got {ids}")
        for c in ids:
            self._check_cluster(c)
        with self.store.write() as w:
            for other in ids[1:]:
                w.connection.execute("UPDATE unknown_appearances SET cluster_id = ? WHERE cluster_id = ?",
                                     (ids[0], other))
                w.connection.execute("DELETE FROM unknown_clusters WHERE id = ?", (other,))
        return ids[0]

    def split(self, cluster_id: int, *, each: bool = False) -> List[int]:
        """Re-cluster one cluster at ``split_similarity`` (``each``: one cluster per appearance). The largest
        group keeps the id; returns the ids of the clusters it became."""
        from gallery.cluster import cluster_embeddings

        self._check_cluster(cluster_id)
        with self.store.write() as w:
            rows = w.connection.execute("SELECT id, vector, first_time FROM unknown_appearances"
                                        " WHERE cluster_id = ? ORDER BY id", (int(cluster_id),)).fetchall()
            vectors = self.store.vectors([r[1] for r in rows])
            labels = (np.arange(len(rows)) if each else
                      cluster_embeddings(vectors, similarity_threshold=self.split_similarity))
            order = np.argsort(-np.bincount(labels), kind="stable")
            result = [int(cluster_id)]
            for label in order[1:]:
                new = _new_cluster(w, min(r[2] for r, lab in zip(rows, labels) if lab == label))
                w.connection.executemany("UPDATE unknown_appearances SET cluster_id = ? WHERE id = ?",
                                         [(new, r[0]) for r, lab in zip(rows, labels) if lab == label])
                result.append(new)
        return result

    def dismiss(self, cluster_id: int) -> int:
        """Delete a cluster with its appearances and crops; returns the appearances deleted."""
        self._check_cluster(cluster_id)
        with self.store.write() as w:
            (n,) = w.connection.execute("SELECT COUNT(*) FROM unknown_appearances WHERE cluster_id = ?",
                                        (int(cluster_id),)).fetchone()
            w.connection.execute("DELETE FROM unknown_clusters WHERE id = ?", (int(cluster_id),))
        return int(n)

    def not_person(self, person: str, *, cluster_id: Optional[int] = None,
                   appearance_id: Optional[int] = None) -> int:
        """"This is not ``person``": the appearance's (or each of the cluster's) embedding becomes a negative
        example of ``person``, who must be enrolled; returns the examples added."""
        if (cluster_id is None) == (appearance_id is None):
            raise ValueError("give exactly one of cluster_id and appearance_id")
        column, key = ("cluster_id", cluster_id) if appearance_id is None else ("id", appearance_id)
        with self.store.write() as w:
            pid = w.person_id(person, create=False)
            if pid is None:
                raise GalleryError(f"no person named {person!r} in the gallery: a negative example needs one")
            rows = w.connection.execute(f"SELECT id, vector FROM unknown_appearances WHERE {column} = ?",
                                        (int(key),)).fetchall()
            if not rows:
                what = "cluster" if appearance_id is None else "appearance"
                raise GalleryError(f"no Unknown {what} with id {key} in the gallery")
            w.connection.executemany(
                "INSERT INTO negatives(person_id, vector, appearance_id, created) VALUES (?, ?, ?, ?)",
                [(pid, blob, aid, time.time()) for aid, blob in rows])
        return len(rows)

    def prune(self, now: Optional[float] = None) -> int:
        """Apply the retention (``retention_days``, ``max_appearances``); returns the appearances deleted."""
        now = time.time() if now is None else float(now)
        with self.store.write() as w:
            conn = w.connection
            deleted = 0                  # rowcount: the appearances only, not the crops deleted with them
            if self.retention_days > 0:
                deleted += conn.execute("DELETE FROM unknown_appearances WHERE last_time < ?",
                                        (now - self.retention_days * _DAY,)).rowcount
            if self.max_appearances > 0:
                deleted += conn.execute(
                    "DELETE FROM unknown_appearances WHERE id NOT IN (SELECT id FROM unknown_appearances"
                    " ORDER BY last_time DESC, id DESC LIMIT ?)", (self.max_appearances,)).rowcount
            conn.execute("DELETE FROM unknown_clusters WHERE id NOT IN"
                         " (SELECT DISTINCT cluster_id FROM unknown_appearances WHERE cluster_id IS NOT NULL)")
        return deleted

    def _check_cluster(self, cluster_id: int) -> None:
        if not self.store.query("SELECT 1 FROM unknown_clusters WHERE id = ?", (int(cluster_id),)):
            raise GalleryError(f"no Unknown cluster #{cluster_id} in the gallery (unknowns list shows them)")


def _centroids(store: GalleryStore, conn) -> Tuple[np.ndarray, np.ndarray]:
    """``(C,)`` cluster ids and ``(C, D)`` unit centroids (weighted means of their appearances)."""
    sql = ("SELECT cluster_id, vector, weight FROM unknown_appearances WHERE cluster_id IS NOT NULL"
           " ORDER BY cluster_id, id")
    rows = conn.execute(sql).fetchall() if conn is not None else store.query(sql)
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, store.dim), np.float32)
    labels = np.asarray([r[0] for r in rows], np.int64)
    weighted = store.vectors([r[1] for r in rows]) * np.asarray([r[2] for r in rows], np.float32)[:, None]
    ids, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(ids), store.dim), np.float64)
    np.add.at(sums, inverse, weighted)
    return ids, l2_normalize(sums).astype(np.float32)


def _nearest(ids: np.ndarray, centroids: np.ndarray, vector: np.ndarray, threshold: float) -> Optional[int]:
    return UnknownIndex(ids, centroids, join_similarity=threshold).match(vector)[0]


def _new_cluster(w: GalleryWriter, created: float) -> int:
    return int(w.connection.execute("INSERT INTO unknown_clusters(created) VALUES (?)", (float(created),)).lastrowid)


def _insert_appearance(w: GalleryWriter, a: Appearance, vec: np.ndarray, cluster: Optional[int]) -> int:
    height = float(np.median(a.face_heights)) if len(a.face_heights) else 0.0
    aid = int(w.connection.execute(
        "INSERT INTO unknown_appearances(cluster_id, named_as, vector, weight, observations, face_height, source,"
        " track_id, first_time, last_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (cluster, a.named_as, vec.tobytes(), float(max(a.observations, 1)), int(a.observations), height,
         str(a.source), int(a.track_id), float(a.first_time), float(a.last_time))).lastrowid)
    w.connection.executemany("INSERT INTO unknown_crops(appearance_id, score, jpeg) VALUES (?, ?, ?)",
                             [(aid, float(s), bytes(j)) for s, j in a.crops])
    return aid
