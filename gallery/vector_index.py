"""An approximate nearest-neighbour index of the gallery's embeddings, and its file next to the gallery.

:class:`VectorIndex` is faiss's inverted file of product-quantizer codes
(``IVF{lists},PQ{D/8}x4fs``): the unit vectors are split into ``lists`` cells
by k-means, and a query scans the codes of the ``nprobe`` cells whose centres
are nearest. Measured at a million 512-d rows on this project's two shared
cores: at 200,000 rows float32 cells (``IVF512,Flat``) took 44-123 ms a batch
of 10 queries for ``nprobe`` 8-32 against 16 ms for the codes, at the same
recall; faiss's graph index (HNSW) cannot remove a vector and takes many
minutes to build. The inverted file removes by id and adds 10,000 rows to a
million in about a second.
Row ids are the gallery's embedding ids, so enrollment and removal map to
:meth:`VectorIndex.add` and :meth:`VectorIndex.remove`, and a rename touches
nothing here (names live in :class:`gallery.index.GalleryIndex`).

The index is saved next to the gallery (:func:`open_synced`) with the
gallery's stamp (:meth:`gallery.store.GalleryStore.stamp`: a random id of the
file and a change counter that SQLite triggers raise). When the stamp differs
the saved index is brought in step row by row: ids that left are removed, new
ids are added, and ids whose vector changed (SQLite may reuse a deleted id) are
replaced, found by two fixed random projections of each vector. A missing or
unreadable file, or one from another gallery, is rebuilt from the database.
The file holds face embeddings: it is written atomically with mode ``0600``.
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from models.io import write_private
from tracker.checks import check_int

logger = logging.getLogger(__name__)

#: Format of the saved file (raised when its layout changes; another version is rebuilt).
FILE_VERSION = 1
#: Fingerprints of one vector that differ by more than this mean the vector changed.
FINGERPRINT_TOLERANCE = 1e-5
_FINGERPRINT_SEED = 20261202
#: OpenMP threads of one search: a batch of 10 queries at 30,000 rows took 1 ms of CPU on one thread and
#: 10 ms on two (the second thread spins), measured on this project's two shared cores.
SEARCH_THREADS = 1


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """``(M, 2)`` float32 projections of each row on two fixed random unit vectors (a cheap change check)."""
    vectors = np.asarray(vectors, np.float32)
    axes = np.random.default_rng(_FINGERPRINT_SEED).standard_normal((vectors.shape[1], 2)).astype(np.float32)
    return vectors @ (axes / np.linalg.norm(axes, axis=0))


class VectorIndex:
    """Unit vectors with int64 ids in a faiss inverted-file index (inner product = cosine similarity).

    The vectors are stored as 4-bit product-quantizer codes scanned with SIMD (faiss's ``PQ{D/8}x4fs``,
    32 bytes a 512-d vector; plain float32 when ``D`` is not a multiple of 16): the similarities it returns
    are approximate and only choose candidates, which :class:`gallery.index.GalleryIndex` scores exactly.

    Parameters
    ----------
    dim : int
        Vector dimension ``D``.
    nprobe : int
        Cells scanned per query (the speed/recall trade-off; :class:`gallery.index.GalleryIndex`
        holds the measured default).
    lists_per_sqrt : float
        The index has ``lists_per_sqrt * sqrt(M)`` cells for ``M`` vectors at build time.
    train_per_list : int
        Vectors per cell used to train the cells' centres (a random sample).
    seed : int
        Seed of the training sample and of k-means.
    """

    def __init__(self, dim: int, *, nprobe: int, lists_per_sqrt: float = 1.0, train_per_list: int = 32,
                 seed: int = 0) -> None:
        check_int("dim", dim, 1)
        check_int("nprobe", nprobe, 1)
        check_int("train_per_list", train_per_list, 1)
        if not lists_per_sqrt > 0:
            raise ValueError(f"lists_per_sqrt must be positive, got {lists_per_sqrt}")
        self.dim, self.nprobe = int(dim), int(nprobe)
        self.lists_per_sqrt, self.train_per_list, self.seed = float(lists_per_sqrt), int(train_per_list), int(seed)
        self._faiss = None
        self.ids = np.zeros(0, np.int64)                 # sorted
        self.prints = np.zeros((0, 2), np.float32)       # fingerprints, in the order of ``ids``

    def __len__(self) -> int:
        return len(self.ids)

    def build(self, ids: np.ndarray, vectors: np.ndarray) -> "VectorIndex":
        """Train the cells on a sample of ``vectors`` and add them all; returns ``self``."""
        import faiss

        ids, vectors = self._checked(ids, vectors)
        if len(ids) == 0:
            raise ValueError("cannot build a vector index of no vectors")
        lists = max(1, min(len(ids), int(round(self.lists_per_sqrt * np.sqrt(len(ids))))))
        codes = f"PQ{self.dim // 8}x4fs" if self.dim % 16 == 0 else "Flat"
        index = faiss.index_factory(self.dim, f"IVF{lists},{codes}", faiss.METRIC_INNER_PRODUCT)
        index.cp.niter, index.cp.seed, index.cp.min_points_per_centroid = 10, self.seed, 1
        index.cp.max_points_per_centroid = self.train_per_list
        rng = np.random.default_rng(self.seed)
        sample = rng.choice(len(vectors), min(len(vectors), lists * self.train_per_list), replace=False)
        index.train(vectors[np.sort(sample)])
        self._faiss = index
        self.ids, self.prints = np.zeros(0, np.int64), np.zeros((0, 2), np.float32)
        self.add(ids, vectors)
        return self

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``(K,)`` new ids with their ``(K, D)`` unit vectors."""
        ids, vectors = self._checked(ids, vectors)
        if self._faiss is None:
            raise ValueError("the vector index is not built yet: call build() first")
        if np.isin(ids, self.ids).any() or len(np.unique(ids)) != len(ids):
            raise ValueError("ids to add must be new and distinct")
        self._faiss.add_with_ids(vectors, ids)
        order = np.argsort(np.concatenate([self.ids, ids]), kind="stable")
        self.ids = np.concatenate([self.ids, ids])[order]
        self.prints = np.concatenate([self.prints, fingerprints(vectors)])[order]

    def remove(self, ids: np.ndarray) -> int:
        """Remove the rows with these ids (unknown ids are ignored); returns how many were removed."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        keep = ~np.isin(self.ids, ids)
        if keep.all():
            return 0
        removed = int(self._faiss.remove_ids(ids))
        self.ids, self.prints = self.ids[keep], self.prints[keep]
        return removed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar rows of each query: ``(N, k)`` similarities and ids (-1 past the last found)."""
        check_int("k", k, 1)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (N, {self.dim}), got {np.shape(queries)}")
        import faiss

        self._faiss.nprobe = min(self.nprobe, self._faiss.nlist)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(SEARCH_THREADS)
        try:
            return self._faiss.search(q, k)
        finally:
            faiss.omp_set_num_threads(threads)

    def _checked(self, ids, vectors) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dim):
            raise ValueError(f"vectors must have shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        return ids, vectors

    # -- keeping in step with the gallery ------------------------------------
    def sync(self, ids: np.ndarray, vectors: np.ndarray) -> "SyncReport":
        """Make the index hold exactly these rows: remove gone and changed ids, add new and changed ones."""
        ids, vectors = self._checked(ids, vectors)
        now = fingerprints(vectors)
        at = np.searchsorted(self.ids, ids)
        known = (at < len(self.ids)) & (self.ids[np.minimum(at, len(self.ids) - 1)] == ids) if len(self.ids) \
            else np.zeros(len(ids), bool)
        changed = known.copy()
        changed[known] = np.abs(self.prints[at[known]] - now[known]).max(axis=1) > FINGERPRINT_TOLERANCE
        gone = self.ids[~np.isin(self.ids, ids)]
        self.remove(np.concatenate([gone, ids[changed]]))
        fresh = ~known | changed
        if fresh.any():
            self.add(ids[fresh], vectors[fresh])
        return SyncReport(added=int((~known).sum()), removed=len(gone), replaced=int(changed.sum()), rebuilt=False)

    def to_bytes(self) -> bytes:
        """The index, its ids and fingerprints as one ``.npz`` payload."""
        import faiss

        buffer = io.BytesIO()
        np.savez(buffer, index=faiss.serialize_index(self._faiss), ids=self.ids, prints=self.prints,
                 version=np.int64(FILE_VERSION))
        return buffer.getvalue()

    def load_bytes(self, payload: bytes) -> None:
        """Read :meth:`to_bytes`'s payload into this index (``ValueError`` when it is not one)."""
        import faiss

        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            if int(data["version"]) != FILE_VERSION:
                raise ValueError(f"file version {int(data['version'])}, expected {FILE_VERSION}")
            index = faiss.deserialize_index(np.ascontiguousarray(data["index"]))
            ids, prints = data["ids"].astype(np.int64), data["prints"].astype(np.float32)
        if index.d != self.dim or index.ntotal != len(ids) or prints.shape != (len(ids), 2):
            raise ValueError(f"saved index has dimension {index.d} and {index.ntotal} rows for {len(ids)} ids")
        self._faiss, self.ids, self.prints = index, ids, prints


@dataclass(frozen=True)
class SyncReport:
    """How a saved index was brought in step with the gallery."""

    added: int
    removed: int
    replaced: int
    rebuilt: bool

    @property
    def changed(self) -> bool:
        """True when the file must be written again."""
        return self.rebuilt or bool(self.added or self.removed or self.replaced)


def open_synced(path: Optional[os.PathLike], stamp: tuple, ids: np.ndarray, vectors: np.ndarray,
                **keywords) -> tuple[VectorIndex, SyncReport]:
    """The index saved at ``path`` in step with ``(ids, vectors)``, rebuilt when missing or unusable.

    ``stamp`` is the gallery's ``(uid, generation)``; a file with the same stamp
    and the same ids is used as it is. ``path=None`` keeps nothing on disk.
    ``keywords`` go to :class:`VectorIndex`. The file is written again when it changed.
    """
    index = VectorIndex(np.shape(vectors)[1], **keywords)
    header = f"{stamp[0]}:{int(stamp[1])}".encode()
    payload = _read(path) if path is not None else None
    report = None
    if payload is not None:
        head, _, body = payload.partition(b"\n")
        try:
            if not head.startswith(f"{stamp[0]}:".encode()) or not stamp[0]:
                raise ValueError("it belongs to another gallery")
            index.load_bytes(body)
            if head == header and int(stamp[1]) >= 0 and np.array_equal(index.ids, np.sort(ids)):
                report = SyncReport(0, 0, 0, rebuilt=False)
            else:
                report = index.sync(ids, vectors)
        except Exception as exc:   # any damage or mismatch of the saved file: rebuild it
            logger.warning("vector index %s is not usable (%s): rebuilding it from the gallery", path, exc)
            report = None
    if report is None:
        index.build(ids, vectors)
        report = SyncReport(added=len(index), removed=0, replaced=0, rebuilt=True)
    if path is not None and (report.changed or payload is None or not payload.startswith(header + b"\n")):
        _write_private(Path(path), header + b"\n" + index.to_bytes())
    logger.info("vector index %s: %s", path, report)
    return index, report


def _read(path: os.PathLike) -> Optional[bytes]:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read vector index %s (%s): rebuilding it", path, exc.strerror)
        return None


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode ``0600`` (a failure is logged: the index is only a cache)."""
    try:
        write_private(path, data)
    except OSError as exc:
        logger.warning("cannot save vector index %s (%s): it will be rebuilt next time", path, exc.strerror)
