"""The gallery file: people, their embeddings and the embedding model's identity.

One SQLite file, no server (its layout, metadata and transactions:
:mod:`gallery.schema`). Every write is one transaction that is rolled back
on any exception (``KeyboardInterrupt`` included), so an interrupted
enrollment leaves the gallery as it was. The file is readable and writable
by its owner only (mode ``0600``, set also on an existing file when opened).
SQLite's errors come out as :class:`GalleryError` subclasses that say what
happened (damage, a lock, a full disk; see :mod:`gallery.schema`).

The model identity (name, embedding dimension, sha256 of the weights) is
stored once when the gallery is created. Opening the gallery with another
model raises :class:`ModelMismatchError`: embeddings of two models are never
mixed.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from gallery import schema
# Re-exported: callers import the errors, the model record and file_mode from here.
from gallery.schema import (FILE_MODE, SCHEMA_VERSION, GalleryCorruptError, GalleryError,  # noqa: F401
                            GalleryLockedError, ModelIdentityLike, ModelMismatchError, StoredModel, file_mode,
                            sqlite_errors)
from tracker.checks import check_number
from tracker.vectors import l2_normalize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PersonSummary:
    """One person of the gallery: ``name`` and how many embeddings it holds."""

    name: str
    embeddings: int


@dataclass(frozen=True)
class SourceRecord:
    """One stored embedding's provenance: photo path, its hash, the person."""

    embedding_id: int
    person: str
    source_path: Optional[str]
    source_sha256: Optional[str]


#: Longest person name accepted for a new person or a rename.
MAX_NAME_LENGTH = 200


def _check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if name != name.strip():
        raise ValueError(f"{what} must not start or end with whitespace, got {name!r}")
    return name


def check_new_name(name: str, what: str = "name") -> str:
    """A name for a new person: :func:`_check_name`, and no control characters, no path separators,
    not ``.`` or ``..``, at most :data:`MAX_NAME_LENGTH` characters (names become folder names and
    terminal output)."""
    import unicodedata

    _check_name(name, what)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise ValueError(f"{what} must not contain control characters, got {name!r}")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"{what} must not contain / or \\ or be . or .., got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} must be at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    return name


class GalleryWriter:
    """The write operations of one open transaction (see :meth:`GalleryStore.write`)."""

    def __init__(self, conn: sqlite3.Connection, model: StoredModel) -> None:
        self._conn = conn
        self._model = model

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection inside this transaction (for the gallery's other tables, :mod:`gallery.unknowns`)."""
        return self._conn

    def unit_vector(self, vector: np.ndarray) -> np.ndarray:
        """``vector`` checked (shape ``(D,)``, finite, non-zero) and L2-normalised, as little-endian float32."""
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape != (self._model.dim,):
            raise ValueError(f"vector must have shape ({self._model.dim},), got {np.shape(vector)}")
        norm = float(np.linalg.norm(vec))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("vector must be finite and non-zero")
        return l2_normalize(vec).astype("<f4")

    def person_id(self, name: str, *, create: bool = True) -> Optional[int]:
        """The id of person ``name``, created when absent and ``create`` is true."""
        _check_name(name)
        row = self._conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        check_new_name(name)
        cur = self._conn.execute("INSERT INTO people(name, created) VALUES (?, ?)", (name, time.time()))
        return int(cur.lastrowid)

    def add_embedding(
        self,
        name: str,
        vector: np.ndarray,
        *,
        source_path: Optional[str] = None,
        source_sha256: Optional[str] = None,
        quality: Optional[float] = None,
    ) -> int:
        """Add one ``(D,)`` embedding of person ``name`` (created if new); returns its id."""
        vec = self.unit_vector(vector)
        pid = self.person_id(name)
        cur = self._conn.execute(
            "INSERT INTO embeddings(person_id, vector, source_path, source_sha256, quality, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (pid, vec.tobytes(), source_path, source_sha256,
             None if quality is None else float(quality), time.time()),
        )
        return int(cur.lastrowid)

    def remove_embeddings(self, embedding_ids: Sequence[int]) -> int:
        """Delete embeddings by id; returns how many were deleted."""
        ids = [(int(i),) for i in embedding_ids]
        if not ids:
            return 0
        # rowcount, not total_changes: the change counter's triggers (gallery.schema) are not deletions
        return int(self._conn.executemany("DELETE FROM embeddings WHERE id = ?", ids).rowcount)

    def remove_person(self, name: str) -> int:
        """Delete a person and its embeddings; returns the number of embeddings removed."""
        pid = self.person_id(name, create=False)
        if pid is None:
            raise GalleryError(f"no person named {name!r} in the gallery")
        (count,) = self._conn.execute("SELECT COUNT(*) FROM embeddings WHERE person_id = ?", (pid,)).fetchone()
        self._conn.execute("DELETE FROM embeddings WHERE person_id = ?", (pid,))
        self._conn.execute("DELETE FROM people WHERE id = ?", (pid,))
        return int(count)

    def rename_person(self, old: str, new: str) -> None:
        """Rename person ``old`` to ``new`` (which must not exist yet)."""
        check_new_name(new, "new name")
        pid = self.person_id(old, create=False)
        if pid is None:
            raise GalleryError(f"no person named {old!r} in the gallery")
        if old == new:
            return
        if self.person_id(new, create=False) is not None:
            raise GalleryError(f"a person named {new!r} already exists; remove it first or pick another name")
        self._conn.execute("UPDATE people SET name = ? WHERE id = ?", (new, pid))

    def remove_empty_people(self) -> list[str]:
        """Delete people left without embeddings; returns their names."""
        rows = self._conn.execute(
            "SELECT id, name FROM people WHERE id NOT IN (SELECT DISTINCT person_id FROM embeddings)"
        ).fetchall()
        self._conn.executemany("DELETE FROM people WHERE id = ?", [(r[0],) for r in rows])
        return sorted(r[1] for r in rows)


class GalleryStore:
    """A gallery of enrolled people in one SQLite file.

    Parameters
    ----------
    path : str or Path
        The gallery file. Its parent directory must exist.
    model : ModelIdentity, optional
        The embedding model in use (anything with ``name``, ``dim`` and
        ``sha256``, e.g. ``FaceEmbedder.identity``). Required to create a
        gallery and to write embeddings; when given for an existing gallery
        it must equal the stored one, else :class:`ModelMismatchError`.
    create : bool
        Create the file when it does not exist (needs ``model``). When false,
        a missing file raises :class:`GalleryError`.
    timeout : float
        Seconds to wait for another process's lock (a warning is logged after
        one second), then :class:`GalleryLockedError`.

    Raises
    ------
    GalleryError
        Missing parent directory, or a missing file that may not be created.
    GalleryCorruptError
        The file is not an SQLite database, not a facetrack gallery, or fails
        ``PRAGMA integrity_check`` (checked on every open).
    GalleryLockedError
        Another process held the lock for longer than ``timeout``.
    ModelMismatchError
        ``model`` differs from the model the gallery was built with.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        model: Optional[ModelIdentityLike] = None,
        *,
        create: bool = True,
        timeout: float = 10.0,
    ) -> None:
        check_number("timeout", timeout, 0)
        self.path = Path(path).expanduser()
        requested = None if model is None else schema.stored_model(model)
        if self.path.is_dir():
            raise GalleryError(f"gallery path {self.path} is a directory, expected a file")
        parent = self.path.parent
        if not parent.is_dir():
            raise GalleryError(f"cannot open gallery {self.path}: directory {parent} does not exist")
        if not self.path.exists():
            if not create:
                raise GalleryError(f"no gallery at {self.path} (enroll some photos first)")
            if requested is None:
                raise GalleryError(f"no gallery at {self.path}; creating one needs the embedding model")
            schema.create_file(self.path)
        schema.make_private(self.path)
        schema.check_header(self.path)
        self.timeout = float(timeout)
        self._conn, self._model = schema.open_gallery(self.path, requested, self.timeout)

    @contextlib.contextmanager
    def write(self) -> Iterator[GalleryWriter]:
        """One write transaction: everything inside is committed together or not at all.

        Examples
        --------
        >>> with store.write() as w:                       # doctest: +SKIP
        ...     w.add_embedding("ada", vector, source_path="/photos/ada/1.jpg")
        """
        conn = self._conn
        with sqlite_errors(self.path, conn):
            begin = lambda: schema.when_unlocked(conn, self.path, self.timeout,  # noqa: E731
                                                 lambda: conn.execute("BEGIN IMMEDIATE"))
            with schema.transaction(conn, begin):
                yield GalleryWriter(conn, self._model)

    # -- reading -----------------------------------------------------------
    @property
    def model(self) -> StoredModel:
        """The embedding model the gallery was built with."""
        return self._model

    @property
    def dim(self) -> int:
        """Embedding dimension ``D``."""
        return self._model.dim

    def people(self) -> list[PersonSummary]:
        """Every person with their number of embeddings, sorted by name."""
        rows = self._read("SELECT p.name, COUNT(e.id) FROM people p LEFT JOIN embeddings e ON e.person_id = p.id"
                          " GROUP BY p.id ORDER BY p.name")
        return [PersonSummary(name, int(n)) for name, n in rows]

    def __len__(self) -> int:
        """Number of stored embeddings."""
        return int(self._read("SELECT COUNT(*) FROM embeddings")[0][0])

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """All embeddings with their person's name.

        Returns
        -------
        names : list of str
            ``M`` person names, one per row.
        vectors : ndarray
            An ``(M, D)`` float32 matrix of L2-normalised embeddings.
        """
        _, names, vectors = self.embeddings_with_ids()
        return names, vectors

    def embeddings_with_ids(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Like :meth:`embeddings`, with the ``(M,)`` int64 embedding ids first (the rows in the same order)."""
        rows = self._read("SELECT e.id, p.name, e.vector FROM embeddings e JOIN people p ON p.id = e.person_id"
                          " ORDER BY p.name, e.id")
        return np.asarray([r[0] for r in rows], np.int64), [r[1] for r in rows], self.vectors([r[2] for r in rows])

    def stamp(self) -> tuple[str, int]:
        """``(gallery_uid, generation)``: the file's random id and its change counter (see :mod:`gallery.schema`)."""
        with sqlite_errors(self.path, self._conn):
            return schema.when_unlocked(self._conn, self.path, self.timeout, lambda: schema.read_stamp(self._conn))

    def vectors(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Stored vector blobs as an ``(M, D)`` float32 matrix (a blob of the wrong size: the file is damaged)."""
        dim = self._model.dim
        vectors = np.empty((len(blobs), dim), dtype=np.float32)
        for i, blob in enumerate(blobs):
            if len(blob) != 4 * dim:
                raise GalleryCorruptError(f"{self.path}: an embedding has {len(blob)} bytes, expected {4 * dim}")
            vectors[i] = np.frombuffer(blob, dtype="<f4")
        return vectors

    def sources(self) -> list[SourceRecord]:
        """Provenance of every stored embedding."""
        rows = self._read("SELECT e.id, p.name, e.source_path, e.source_sha256 FROM embeddings e"
                          " JOIN people p ON p.id = e.person_id ORDER BY e.id")
        return [SourceRecord(int(i), n, sp, sh) for i, n, sp, sh in rows]

    def _read(self, sql: str, params: Sequence = ()) -> list:
        """All rows of one query, waiting for a lock and with SQLite's errors explained."""
        with sqlite_errors(self.path, self._conn):
            return schema.when_unlocked(self._conn, self.path, self.timeout,
                                        lambda: self._conn.execute(sql, tuple(params)).fetchall())

    def query(self, sql: str, params: Sequence = ()) -> list:
        """All rows of one read-only query (for the gallery's other tables, :mod:`gallery.unknowns`)."""
        return self._read(sql, params)

    def integrity_ok(self) -> bool:
        """True when SQLite's ``PRAGMA integrity_check`` reports ``ok``."""
        return schema.integrity_ok(self._conn)

    # -- one-shot writes -----------------------------------------------------
    def remove_person(self, name: str) -> int:
        """Remove a person and its embeddings (one transaction); returns embeddings removed."""
        with self.write() as w:
            return w.remove_person(name)

    def rename_person(self, old: str, new: str) -> None:
        """Rename a person (one transaction)."""
        with self.write() as w:
            w.rename_person(old, new)

    # -- lifetime ------------------------------------------------------------
    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> "GalleryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

