"""The gallery file itself: table layout, metadata, integrity checks and transactions.

:class:`gallery.store.GalleryStore` is the public API; this module is what it
stands on. The file is created readable and writable by its owner only (mode
``0600``) before SQLite opens it, and an existing file (an empty file made by
someone else, an old gallery) is set to ``0600`` when opened; SQLite gives its
rollback journal the same mode (``journal_mode=DELETE``, the journal lives
only during a write). Every write is one ``BEGIN IMMEDIATE`` transaction that
is rolled back on any exception (``KeyboardInterrupt`` included).

SQLite's errors never leave this package raw (:func:`sqlite_errors`): a
damaged file is a :class:`GalleryCorruptError` with the result of ``PRAGMA
integrity_check`` and what to do (the check also runs on every open), a
gallery locked by another process is waited for, with a warning, and then a
:class:`GalleryLockedError`, and a full disk is a :class:`GalleryError` that
says so.

Tables
------
``meta(key, value)``
    ``schema_version``, ``model_name``, ``model_dim``, ``model_sha256``; ``generation``, a counter that
    triggers raise on every change of an embedding or a person's name, and ``gallery_uid``, a random id of
    the file (together they tell a saved vector index whether it is still this gallery's, see
    :mod:`gallery.vector_index`; both are added to older galleries when opened).
``people(id, name, created)``
    One row per person, ``name`` unique.
``embeddings(id, person_id, vector, source_path, source_sha256, quality, created)``
    ``vector`` is a little-endian float32 blob of ``model_dim`` values,
    L2-normalised; ``source_path`` is the absolute path of the photo it was
    computed from and ``source_sha256`` the hash of that file's bytes.
``unknown_clusters``, ``unknown_appearances``, ``unknown_crops``, ``negatives``
    Unknown people seen by the camera and negative examples ("this is not X"),
    see :mod:`gallery.unknowns` (added in version 2; a version-1 gallery is
    migrated in one transaction when opened).
"""
from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, TypeVar

from gallery.files import (DIR_MODE, FILE_MODE, GalleryCorruptError, GalleryError, GalleryLockedError,  # noqa: F401
                           ModelMismatchError, check_header, create_file, file_mode, make_private, make_private_dir)

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Version of the table layout written in ``meta``.
SCHEMA_VERSION = 2
#: Rows of ``PRAGMA integrity_check`` quoted in the error about a damaged gallery.
INTEGRITY_ROWS = 5
#: Seconds waited for a lock before saying so (the rest of the timeout is waited after the warning).
LOCK_NOTICE_SECONDS = 1.0

_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE people (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE embeddings (
    id            INTEGER PRIMARY KEY,
    person_id     INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector        BLOB NOT NULL,
    source_path   TEXT,
    source_sha256 TEXT,
    quality       REAL,
    created       REAL NOT NULL
);
CREATE INDEX embeddings_person ON embeddings(person_id);
CREATE INDEX embeddings_source ON embeddings(source_path);
"""
#: Tables added in schema version 2 (:mod:`gallery.unknowns`). Ids are AUTOINCREMENT: never reused, so
#: ``Unknown #17`` is never someone else after #17 is dismissed.
_SCHEMA_V2 = """
CREATE TABLE unknown_clusters (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL);
CREATE TABLE unknown_appearances (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cluster_id INTEGER REFERENCES unknown_clusters(id) ON DELETE CASCADE,
    named_as TEXT, vector BLOB NOT NULL, weight REAL NOT NULL, observations INTEGER NOT NULL,
    face_height REAL NOT NULL, source TEXT, track_id INTEGER, first_time REAL NOT NULL, last_time REAL NOT NULL
);
CREATE INDEX unknown_appearances_cluster ON unknown_appearances(cluster_id);
CREATE TABLE unknown_crops (
    id INTEGER PRIMARY KEY, score REAL NOT NULL, jpeg BLOB NOT NULL,
    appearance_id INTEGER NOT NULL REFERENCES unknown_appearances(id) ON DELETE CASCADE
);
CREATE INDEX unknown_crops_appearance ON unknown_crops(appearance_id);
CREATE TABLE negatives (
    id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector BLOB NOT NULL, appearance_id INTEGER, created REAL NOT NULL
);
CREATE INDEX negatives_person ON negatives(person_id);
"""
#: The tables every version-2 gallery has.
_TABLES_V2 = {"meta", "people", "embeddings", "unknown_clusters", "unknown_appearances", "unknown_crops",
              "negatives"}

#: The change counter: one trigger per kind of change the vector index must follow (additive, created on open).
_GENERATION_TRIGGERS = {
    f"generation_{name}": f"CREATE TRIGGER IF NOT EXISTS generation_{name} AFTER {event} BEGIN "
                          "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END"
    for name, event in (("insert", "INSERT ON embeddings"), ("delete", "DELETE ON embeddings"),
                        ("update", "UPDATE OF vector, person_id ON embeddings"),
                        ("rename", "UPDATE OF name ON people"))
}


def damaged_message(path: Path, problems: list) -> str:
    """What is wrong with a damaged gallery and what to do, in one line."""
    found = "; ".join(problems[:INTEGRITY_ROWS]) + (" ..." if len(problems) > INTEGRITY_ROWS else "")
    return (f"gallery {path} is damaged (PRAGMA integrity_check: {found}); restore it from a backup, or move "
            f"it away and enroll the photos again into a new file (sqlite3 {path} .recover may save the rest)")


def integrity_problems(conn: sqlite3.Connection) -> list:
    """The rows of ``PRAGMA integrity_check`` (empty when it says ``ok``); a check that fails is a row too."""
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA integrity_check({INTEGRITY_ROWS + 1})").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


@contextlib.contextmanager
def sqlite_errors(path: Path, conn: Optional[sqlite3.Connection] = None) -> Iterator[None]:
    """Turn SQLite's errors into gallery errors that say what happened and what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise GalleryLockedError(f"gallery {path} is locked by another process ({text}); close the other "
                                     "program using it (or wait for it to finish) and run again") from None
        if "full" in text:
            raise GalleryError(f"cannot write gallery {path}: the disk is full ({text}); nothing of the failed "
                               "write was kept: free some space and run again") from None
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            problems = integrity_problems(conn) if conn is not None else []
            raise GalleryCorruptError(damaged_message(path, problems or [text])) from None
        if "readonly" in text or "read-only" in text:
            raise GalleryError(f"cannot write gallery {path}: it is read-only ({text})") from None
        raise GalleryError(f"gallery {path}: {text}") from None


class ModelIdentityLike(Protocol):
    """What the store needs of ``models.embedder.ModelIdentity``."""

    name: str
    dim: int
    sha256: str


@dataclass(frozen=True)
class StoredModel:
    """The embedding model a gallery was built with (as stored in ``meta``)."""

    name: str
    dim: int
    sha256: str


def stored_model(model: ModelIdentityLike) -> StoredModel:
    """``model`` (anything with ``name``, ``dim``, ``sha256``) as a :class:`StoredModel`, checked."""
    try:
        name, dim, sha = str(model.name), int(model.dim), str(model.sha256 or "")
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"model must have name, dim and sha256 attributes, got {model!r}") from exc
    if not name:
        raise ValueError("model.name must not be empty")
    if dim <= 0:
        raise ValueError(f"model.dim must be positive, got {dim}")
    return StoredModel(name=name, dim=dim, sha256=sha)


def open_gallery(path: Path, requested: Optional[StoredModel], timeout: float) -> tuple[sqlite3.Connection,
                                                                                       StoredModel]:
    """Connect to the gallery file, create its tables when it is empty, and read its model.

    Returns
    -------
    conn : sqlite3.Connection
        In autocommit mode (transactions are explicit, see :func:`transaction`).
    model : StoredModel
        The model the gallery was built with.
    """
    try:
        conn = sqlite3.connect(str(path), timeout=min(timeout, LOCK_NOTICE_SECONDS), isolation_level=None)
    except sqlite3.Error as exc:
        raise GalleryError(f"cannot open gallery {path}: {exc}") from exc
    try:
        with sqlite_errors(path, conn):
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")    # deleted faces are overwritten, not left in free pages
            when_unlocked(conn, path, timeout, lambda: conn.execute("PRAGMA journal_mode = DELETE"))
            conn.execute("PRAGMA synchronous = FULL")
            return conn, when_unlocked(conn, path, timeout, lambda: _checked_meta(conn, path, requested))
    except BaseException:
        conn.close()
        raise


def when_unlocked(conn: sqlite3.Connection, path: Path, timeout: float, action: Callable[[], T]) -> T:
    """``action()``; when another process holds the lock, say so and try once more for the rest of ``timeout``.

    The connection waits :data:`LOCK_NOTICE_SECONDS` (SQLite's busy timeout) before
    the warning, then the remaining time; a lock still held after that raises
    ``sqlite3.OperationalError`` (:func:`sqlite_errors` makes it a :class:`GalleryLockedError`).
    """
    try:
        return action()
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
    rest = max(0.0, timeout - LOCK_NOTICE_SECONDS)
    logger.warning("gallery %s is locked by another process; waiting up to %.0f s more", path, rest)
    conn.execute(f"PRAGMA busy_timeout = {int(rest * 1000)}")
    try:
        return action()
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(min(timeout, LOCK_NOTICE_SECONDS) * 1000)}")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, begin: Optional[Callable[[], object]] = None
                ) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (through ``begin`` when given, e.g. to wait for a lock) ... ``COMMIT``,
    or ``ROLLBACK`` on any exception.

    SQLite rolls a transaction back by itself after some errors (a full disk);
    the ``ROLLBACK`` is then skipped, so the error raised is the real one.
    """
    (begin or (lambda: conn.execute("BEGIN IMMEDIATE")))()
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as rollback_error:   # never hide the error that made us roll back
                logger.debug("rollback failed: %s", rollback_error)
        raise


def _checked_meta(conn: sqlite3.Connection, path: Path, requested: Optional[StoredModel]) -> StoredModel:
    """The integrity check, then the model record (the tables created in an empty file)."""
    problems = integrity_problems(conn)
    if problems and any("locked" in p or "busy" in p for p in problems):
        raise sqlite3.OperationalError(problems[0])
    if problems:
        raise GalleryCorruptError(damaged_message(path, problems))
    return _init_or_read_meta(conn, path, requested)


def _init_or_read_meta(conn: sqlite3.Connection, path: Path, requested: Optional[StoredModel]) -> StoredModel:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        if requested is None:
            raise GalleryError(f"{path} is an empty file; creating a gallery needs the embedding model")
        _create_tables(conn, requested)
        logger.info("created gallery %s for model %s (dim %d)", path, requested.name, requested.dim)
        return requested
    if not {"meta", "people", "embeddings"} <= tables:
        raise GalleryCorruptError(
            f"{path} is an SQLite database but not a facetrack gallery (tables: {sorted(tables)})"
        )
    stored = _read_meta(conn, path, tables)
    _ensure_generation(conn)
    if requested is not None and requested != stored:
        raise ModelMismatchError(
            f"gallery {path} was built with embedding model {stored.name!r} "
            f"(dim {stored.dim}, sha256 {stored.sha256[:12] or '?'}), but the model in use is "
            f"{requested.name!r} (dim {requested.dim}, sha256 {requested.sha256[:12] or '?'}); "
            "embeddings of different models cannot be compared: use the same model or enroll into a new gallery"
        )
    return stored


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Each statement of ``script`` inside the caller's transaction (``executescript`` would commit)."""
    for statement in script.strip().split(";"):
        if statement.strip():
            conn.execute(statement)


def _create_tables(conn: sqlite3.Connection, model: StoredModel) -> None:
    with transaction(conn):
        _execute_script(conn, _SCHEMA + _SCHEMA_V2)
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [("schema_version", str(SCHEMA_VERSION)), ("model_name", model.name),
             ("model_dim", str(model.dim)), ("model_sha256", model.sha256)],
        )
    _ensure_generation(conn)


def _ensure_generation(conn: sqlite3.Connection) -> None:
    """The ``generation`` counter, the ``gallery_uid`` and their triggers, added when missing (older files)."""
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    keys = {r[0] for r in conn.execute("SELECT key FROM meta WHERE key IN ('generation', 'gallery_uid')")}
    if set(_GENERATION_TRIGGERS) <= triggers and len(keys) == 2:
        return
    import uuid

    try:
        with transaction(conn):
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0')")
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('gallery_uid', ?)", (uuid.uuid4().hex,))
            for statement in _GENERATION_TRIGGERS.values():
                conn.execute(statement)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "read-only" not in str(exc):
            raise
        logger.warning("gallery is read-only: no change counter added (%s); a saved vector index is checked "
                       "row by row instead", exc)


def read_stamp(conn: sqlite3.Connection) -> tuple[str, int]:
    """``(gallery_uid, generation)``: which gallery this is and how many changes it has seen."""
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'gallery_uid')").fetchall())
    return str(meta.get("gallery_uid", "")), int(meta.get("generation", -1))


def _read_meta(conn: sqlite3.Connection, path: Path, tables: set) -> StoredModel:
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    try:
        version = int(meta["schema_version"])
        stored = StoredModel(meta["model_name"], int(meta["model_dim"]), meta["model_sha256"])
    except (KeyError, ValueError) as exc:
        raise GalleryCorruptError(f"{path}: gallery metadata is incomplete ({exc})") from exc
    if version == 1:
        _migrate_to_v2(conn, path)
    elif version != SCHEMA_VERSION:
        raise GalleryError(f"{path}: gallery schema version {version}, this program reads {SCHEMA_VERSION}")
    elif not _TABLES_V2 <= tables:
        raise GalleryCorruptError(f"{path}: gallery version {version} lacks the tables "
                                  f"{sorted(_TABLES_V2 - tables)}; restore it from a backup")
    return stored


def _migrate_to_v2(conn: sqlite3.Connection, path: Path) -> None:
    """Version 1 -> 2: the Unknowns' and the negative examples' tables, in one transaction."""
    with transaction(conn):
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if int(version) != 1:           # another process migrated it meanwhile
            return
        _execute_script(conn, _SCHEMA_V2)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    logger.info("gallery %s migrated to schema version %d (Unknown people, negative examples)", path,
                SCHEMA_VERSION)


def integrity_ok(conn: sqlite3.Connection) -> bool:
    """True when SQLite's ``PRAGMA integrity_check`` reports ``ok``."""
    return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
