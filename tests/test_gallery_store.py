"""GalleryStore: round trip, model identity, transactions, file mode, bad files."""
from __future__ import annotations

import os
import sqlite3
import stat

import numpy as np
import pytest

from gallery.store import (GalleryCorruptError, GalleryError, GalleryStore, ModelMismatchError, StoredModel,
                           file_mode)
from test_gallery_fakes import DIM, FakeIdentity, person_vector


def _fill(store: GalleryStore) -> None:
    with store.write() as w:
        w.add_embedding("alice", person_vector("alice"), source_path="/p/a1.jpg", source_sha256="h1", quality=0.9)
        w.add_embedding("alice", person_vector("alice2"), source_path="/p/a2.jpg", source_sha256="h2")
        w.add_embedding("bob", 3.0 * person_vector("bob"), source_path="/p/b1.jpg", source_sha256="h3")


def _snapshot(path):
    with GalleryStore(path, create=False) as s:
        names, vecs = s.embeddings()
        return [p.__dict__ for p in s.people()], names, vecs.copy(), s.integrity_ok()


def test_round_trip(tmp_path):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as s:
        _fill(s)
    with GalleryStore(db, FakeIdentity()) as s:
        assert s.model == StoredModel("fake-embedder", DIM, "ab" * 32)
        assert [(p.name, p.embeddings) for p in s.people()] == [("alice", 2), ("bob", 1)]
        names, vecs = s.embeddings()
        assert names == ["alice", "alice", "bob"]
        assert vecs.dtype == np.float32 and vecs.shape == (3, DIM)
        np.testing.assert_allclose(vecs[0], person_vector("alice"), atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)   # stored normalised
        src = {r.source_path: (r.person, r.source_sha256) for r in s.sources()}
        assert src["/p/b1.jpg"] == ("bob", "h3")
        assert len(s) == 3


@pytest.mark.parametrize("other", [FakeIdentity(sha256="cd" * 32), FakeIdentity(dim=128),
                                   FakeIdentity(name="w600k_r50")])
def test_refuses_a_different_model(tmp_path, other):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as s:
        _fill(s)
    with pytest.raises(ModelMismatchError, match="fake-embedder"):
        GalleryStore(db, other)
    assert _snapshot(db)[0][0]["embeddings"] == 2     # untouched


def test_wrong_vector_dimension_is_refused(tmp_path):
    with GalleryStore(tmp_path / "g.db", FakeIdentity()) as s:
        with pytest.raises(ValueError, match="shape"):
            with s.write() as w:
                w.add_embedding("alice", np.ones(128, np.float32))
        with pytest.raises(ValueError, match="non-zero"):
            with s.write() as w:
                w.add_embedding("alice", np.zeros(DIM, np.float32))
        assert len(s) == 0 and s.people() == []


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_exception_mid_write_leaves_the_gallery_unchanged(tmp_path, exc):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as s:
        _fill(s)
    before = _snapshot(db)
    with GalleryStore(db, FakeIdentity()) as s:
        with pytest.raises(type(exc)):
            with s.write() as w:
                w.add_embedding("carol", person_vector("carol"))
                w.remove_person("alice")
                raise exc
    after = _snapshot(db)
    assert after[0] == before[0] and after[1] == before[1]
    np.testing.assert_array_equal(after[2], before[2])
    assert after[3]                                      # integrity_check ok
    assert not os.path.exists(str(db) + "-journal")


def test_file_mode_is_owner_only_even_with_a_permissive_umask(tmp_path):
    db = tmp_path / "g.db"
    old = os.umask(0)
    try:
        with GalleryStore(db, FakeIdentity()) as s:
            with s.write() as w:
                w.add_embedding("alice", person_vector("alice"))
                journal = str(db) + "-journal"
                assert os.path.exists(journal), "rollback journal expected during a write (journal_mode=DELETE)"
                assert file_mode(journal) & 0o077 == 0, oct(file_mode(journal))
    finally:
        os.umask(old)
    assert file_mode(db) == 0o600
    assert stat.S_IMODE(os.stat(db).st_mode) & 0o077 == 0


def test_missing_parent_directory(tmp_path):
    with pytest.raises(GalleryError, match="does not exist"):
        GalleryStore(tmp_path / "nope" / "g.db", FakeIdentity())


def test_missing_file_without_create_or_model(tmp_path):
    with pytest.raises(GalleryError, match="no gallery"):
        GalleryStore(tmp_path / "g.db", FakeIdentity(), create=False)
    with pytest.raises(GalleryError, match="needs the embedding model"):
        GalleryStore(tmp_path / "g.db")
    assert not (tmp_path / "g.db").exists()


def test_random_bytes_are_a_corrupt_gallery(tmp_path):
    db = tmp_path / "g.db"
    db.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(GalleryCorruptError, match="not a facetrack gallery"):
        GalleryStore(db, FakeIdentity())


def test_truncated_database_is_corrupt(tmp_path):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as s:
        _fill(s)
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
    with pytest.raises(GalleryCorruptError):
        with GalleryStore(db, FakeIdentity()) as s:
            s.embeddings()


def test_other_sqlite_database_is_not_a_gallery(tmp_path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    with pytest.raises(GalleryCorruptError, match="not a facetrack gallery"):
        GalleryStore(db, FakeIdentity())


def test_directory_path_is_refused(tmp_path):
    with pytest.raises(GalleryError, match="directory"):
        GalleryStore(tmp_path, FakeIdentity())


def test_remove_and_rename(tmp_path):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as s:
        _fill(s)
        assert s.remove_person("alice") == 2
        with pytest.raises(GalleryError, match="no person named 'alice'"):
            s.remove_person("alice")
        s.rename_person("bob", "Robert")
        with pytest.raises(GalleryError, match="no person named 'bob'"):
            s.rename_person("bob", "x")
        with s.write() as w:
            w.add_embedding("carol", person_vector("carol"))
        with pytest.raises(GalleryError, match="already exists"):
            s.rename_person("carol", "Robert")
        with pytest.raises(ValueError, match="new name"):
            s.rename_person("carol", "  ")
        assert [(p.name, p.embeddings) for p in s.people()] == [("Robert", 1), ("carol", 1)]
    assert _snapshot(db)[3]


def test_remove_empty_people(tmp_path):
    with GalleryStore(tmp_path / "g.db", FakeIdentity()) as s:
        _fill(s)
        ids = [r.embedding_id for r in s.sources() if r.person == "bob"]
        with s.write() as w:
            assert w.remove_embeddings(ids) == 1
            assert w.remove_empty_people() == ["bob"]
        assert [p.name for p in s.people()] == ["alice"]


def test_bad_keywords():
    with pytest.raises(ValueError, match="timeout"):
        GalleryStore("x.db", FakeIdentity(), timeout=-1)
    with pytest.raises(ValueError, match="model"):
        GalleryStore("x.db", object())
