"""Enrollment with fake models: layouts, every skip reason, incremental runs, sync, atomicity."""
from __future__ import annotations

import numpy as np
import pytest

from gallery.enroll import ENROLLED, REMOVED, SKIPPED, UNCHANGED, UPDATED, Enroller, person_from_filename, \
    scan_photo_dir
from gallery.store import GalleryStore, GalleryWriter
from test_gallery_fakes import FakeDetector, FakeEmbedder, FakeIdentity, fake_quality, fake_reader, write_photo


def make_enroller(embedder=None, detector=None, **kw):
    return Enroller(detector or FakeDetector(), embedder or FakeEmbedder(), image_reader=fake_reader,
                    quality_fn=fake_quality, **kw)


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    write_photo(root / "alice" / "a1.jpg", ("alice", 120, 0.05))
    write_photo(root / "alice" / "a2.jpg", ("alice", 100, 0.05), ("stranger", 30, 0.05))   # small bystander: ok
    write_photo(root / "bob" / "b1.png", ("bob", 90, 0.05))
    write_photo(root / "Carol_Smith_1.jpg", ("carol", 110, 0.05))                        # flat layout
    write_photo(root / "Carol_Smith_2.jpg", ("carol", 110, 0.04))
    return root


def _db_state(path):
    with GalleryStore(path, create=False) as s:
        names, vecs = s.embeddings()
        return [(p.name, p.embeddings) for p in s.people()], names, vecs.copy(), \
            sorted((r.source_path, r.source_sha256) for r in s.sources()), s.integrity_ok()


def _assert_same_state(a, b):
    assert a[0] == b[0] and a[1] == b[1] and a[3] == b[3]
    np.testing.assert_array_equal(a[2], b[2])
    assert b[4]


@pytest.mark.parametrize("stem, person", [("Person_Name_1", "Person_Name"), ("Ada_Lovelace_12", "Ada_Lovelace"),
                                          ("ada-2", "ada"), ("Bob", "Bob"), ("R2_D2", "R2_D2"), ("_1", "_1")])
def test_person_from_filename(stem, person):
    assert person_from_filename(stem) == person


def test_scan_layouts_and_bad_folder(photos, tmp_path):
    (photos / ".hidden.jpg").write_text("x")
    (photos / "alice" / ".DS_Store").write_text("x")
    items = [(p, f.name) for p, f in scan_photo_dir(photos)]
    assert items == [("Carol_Smith", "Carol_Smith_1.jpg"), ("Carol_Smith", "Carol_Smith_2.jpg"),
                     ("alice", "a1.jpg"), ("alice", "a2.jpg"), ("bob", "b1.png")]
    with pytest.raises(ValueError, match="does not exist"):
        scan_photo_dir(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a folder"):
        scan_photo_dir(photos / "Carol_Smith_1.jpg")


def test_enroll_folder(photos, tmp_path):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as store:
        report = make_enroller().enroll_folder(photos, store, progress=False)
        assert report.counts() == {ENROLLED: 5}
        assert [(p.name, p.embeddings) for p in store.people()] == [("Carol_Smith", 2), ("alice", 2), ("bob", 1)]
    assert "total" in report.table()


@pytest.mark.parametrize("faces, reason", [
    ((), "no face found"),
    ((("alice", 100, 0.05), ("bob", 90, 0.05)), "2 faces of comparable size"),
    ((("alice", 20, 0.05),), "too small"),
    ((("alice", 100, 0.0005),), "too blurred"),
])
def test_skip_reasons(tmp_path, faces, reason):
    root = tmp_path / "photos"
    write_photo(root / "alice" / "p.jpg", *faces)
    with GalleryStore(tmp_path / "g.db", FakeIdentity()) as store:
        report = make_enroller().enroll_folder(root, store, progress=False)
        assert len(store) == 0
    (r,) = report.results
    assert r.status == SKIPPED and reason in r.reason
    assert reason in report.table()


def test_non_image_and_unreadable_files(tmp_path):
    root = tmp_path / "photos"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "notes.txt").write_text("remember to smile")
    (root / "alice" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)))
    write_photo(root / "alice" / "good.jpg", ("alice", 100, 0.05))
    with GalleryStore(tmp_path / "g.db", FakeIdentity()) as store:
        report = make_enroller().enroll_folder(root, store, progress=False)
    by_name = {r.path.name: r for r in report.results}
    assert by_name["good.jpg"].status == ENROLLED
    for name in ("notes.txt", "broken.jpg"):
        assert by_name[name].status == SKIPPED and "not an image" in by_name[name].reason


def test_incremental_update_and_sync(photos, tmp_path):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as store:
        make_enroller().enroll_folder(photos, store, progress=False)
    # unchanged photos are not recomputed
    emb = FakeEmbedder()
    with GalleryStore(db, FakeIdentity()) as store:
        report = make_enroller(embedder=emb).enroll_folder(photos, store, progress=False)
    assert report.counts() == {UNCHANGED: 5} and emb.calls == 0
    # one photo changed, one added, one deleted
    write_photo(photos / "bob" / "b1.png", ("bob", 95, 0.06))
    write_photo(photos / "bob" / "b2.png", ("bob", 96, 0.06))
    (photos / "Carol_Smith_1.jpg").unlink()
    (photos / "Carol_Smith_2.jpg").unlink()
    with GalleryStore(db, FakeIdentity()) as store:
        report = make_enroller().enroll_folder(photos, store, progress=False)
        assert report.counts() == {UNCHANGED: 2, UPDATED: 1, ENROLLED: 1}
        assert dict((p.name, p.embeddings) for p in store.people())["Carol_Smith"] == 2   # kept without --sync
        report = make_enroller().enroll_folder(photos, store, sync=True, progress=False)
        assert report.counts()[REMOVED] == 2 and report.removed_people == ["Carol_Smith"]
        assert [(p.name, p.embeddings) for p in store.people()] == [("alice", 2), ("bob", 2)]


def test_same_photo_in_two_folders_is_enrolled_once(tmp_path):
    root = tmp_path / "photos"
    write_photo(root / "alice" / "x.jpg", ("alice", 100, 0.05))
    write_photo(root / "bob" / "x.jpg", ("alice", 100, 0.05))
    with GalleryStore(tmp_path / "g.db", FakeIdentity()) as store:
        report = make_enroller().enroll_folder(root, store, progress=False)
        assert len(store) == 1
    assert report.results[1].status == SKIPPED and "same photo" in report.results[1].reason


def test_rename_survives_re_enrollment(photos, tmp_path):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as store:
        make_enroller().enroll_folder(photos, store, progress=False)
        store.rename_person("alice", "Alice Liddell")
        report = make_enroller().enroll_folder(photos, store, progress=False)
        assert report.counts() == {UNCHANGED: 5}
        assert "alice" not in [p.name for p in store.people()]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_while_embedding_leaves_the_gallery_unchanged(photos, tmp_path, exc):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as store:
        make_enroller().enroll_folder(photos / "alice", store, progress=False)   # some prior content
    before = _db_state(db)

    class Failing(FakeEmbedder):
        def embed(self, image, detections):
            if self.calls >= 2:
                raise exc("injected")
            return super().embed(image, detections)

    with GalleryStore(db, FakeIdentity()) as store:
        with pytest.raises(exc):
            make_enroller(embedder=Failing()).enroll_folder(photos, store, sync=True, progress=False)
    _assert_same_state(before, _db_state(db))


def test_failure_in_the_middle_of_the_write_leaves_the_gallery_unchanged(photos, tmp_path, monkeypatch):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as store:
        make_enroller().enroll_folder(photos / "alice", store, progress=False)
    before = _db_state(db)
    real = GalleryWriter.add_embedding
    calls = {"n": 0}

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("Ctrl-C during the write")
        return real(self, *a, **k)

    monkeypatch.setattr(GalleryWriter, "add_embedding", flaky)
    with GalleryStore(db, FakeIdentity()) as store:
        with pytest.raises(KeyboardInterrupt):
            make_enroller().enroll_folder(photos, store, sync=True, progress=False)
    assert calls["n"] == 3                      # two rows were written inside the transaction, then rolled back
    _assert_same_state(before, _db_state(db))


@pytest.mark.parametrize("keyword, value", [("min_face_size", -1), ("min_sharpness", -0.1),
                                            ("comparable_face_ratio", 0.0), ("comparable_face_ratio", 1.5)])
def test_keyword_validation(keyword, value):
    with pytest.raises(ValueError, match=keyword):
        make_enroller(**{keyword: value})


def test_models_are_checked():
    with pytest.raises(ValueError, match="detector"):
        Enroller(object(), FakeEmbedder())
    with pytest.raises(ValueError, match="embedder"):
        Enroller(FakeDetector(), object())
