"""Persistent Unknown identities on synthetic embeddings: clustering, stable ids, retention, naming,
merge/split/dismiss, negative examples, transactions, the schema migration, the recorder and the command line."""
from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from facetrack import unknowns_cli
from gallery.identifier import Identifier
from gallery.index import GalleryIndex
from gallery.store import GalleryError, GalleryStore, file_mode
from gallery.unknown_recorder import UnknownRecorder
from gallery.unknowns import Appearance, UnknownGallery, join_separation
from test_gallery_fakes import DIM, FakeIdentity, FakeTrack, person_vector
from test_gallery_identifier import frame, noisy

T0 = 1_800_000_000.0
DAY = 86400.0


def seen(person: str, rng=None, *, noise: float = 0.5, when: float = T0, source: str = "cam", track: int = 1,
         named_as=None, crops=((0.9, b"\xff\xd8jpeg"),)) -> Appearance:
    """An appearance of ``person``: its mean embedding with some noise (similarity about 0.9 to the person)."""
    rng = rng or np.random.default_rng(abs(hash((person, when, track))) % 2 ** 32)
    vec = person_vector(person) + noise * rng.standard_normal(DIM) / np.sqrt(DIM)
    return Appearance(vec.astype(np.float32), 10, (100.0,) * 10, when, when + 5, source, track, crops, named_as)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "gallery.db"
    GalleryStore(path, FakeIdentity()).close()
    return path


@pytest.fixture
def store(db):
    with GalleryStore(db, FakeIdentity()) as s:
        yield s


def test_the_same_stranger_gets_the_same_id_across_sessions_and_sources_and_ids_are_never_reused(db):
    with GalleryStore(db, FakeIdentity()) as s:
        u = UnknownGallery(s)
        first = u.record(seen("stranger", source="front door"))
        other = u.record(seen("someone else", source="front door"))
        assert first != other
    with GalleryStore(db, FakeIdentity()) as s:             # tomorrow, another camera
        u = UnknownGallery(s)
        assert u.record(seen("stranger", source="garden", when=T0 + DAY)) == first
        assert {c.cluster_id: c.appearances for c in u.clusters()} == {first: 2, other: 1}
        got = {c.cluster_id: c for c in u.clusters()}[first]
        assert got.sources == ("front door", "garden") and got.first_seen == T0 and got.last_seen == T0 + DAY + 5
        assert got.label == f"Unknown #{first}"
        u.dismiss(other)
        third = u.record(seen("a third person"))
        assert third not in (first, other)                  # AUTOINCREMENT: #other is never someone else


def test_an_appearance_far_from_every_cluster_starts_a_new_one_at_the_join_threshold(store):
    u = UnknownGallery(store, join_similarity=0.5)
    a = u.record(seen("p"))
    orth = person_vector("q") - (person_vector("q") @ person_vector("p")) * person_vector("p")
    orth /= np.linalg.norm(orth)
    at = lambda cos: Appearance(cos * person_vector("p") + np.sqrt(1 - cos ** 2) * orth, 5, (100.0,) * 5,  # noqa
                                T0, T0, "cam", 2)
    centroid = u.index().centroids[0]
    assert u.record(at(0.6)) == a
    assert u.record(at(0.05)) != a
    assert centroid.shape == (DIM,)


def test_retention_by_days_and_by_count(store):
    u = UnknownGallery(store, retention_days=30, max_appearances=3)
    old = u.record(seen("old", when=T0 - 40 * DAY))
    for k in range(4):
        u.record(seen("recent", when=T0 - k, track=10 + k))
    assert u.prune(now=T0) == 2                              # the 40-day-old one, and the oldest beyond 3
    assert [c.appearances for c in u.clusters()] == [3]
    assert old not in [c.cluster_id for c in u.clusters()]
    assert store.query("SELECT COUNT(*) FROM unknown_crops")[0][0] == 3   # crops go with their appearances
    assert UnknownGallery(store, retention_days=0, max_appearances=0).prune(now=T0 + 1000 * DAY) == 0


def test_merge_split_and_dismiss(store):
    u = UnknownGallery(store, split_similarity=0.65)
    a = u.record(seen("ann"))
    b = u.record(seen("bob"))
    u.record(seen("ann", track=3))
    assert u.merge([a, b]) == a
    assert [(c.cluster_id, c.appearances) for c in u.clusters()] == [(a, 3)]
    parts = u.split(a)                                       # ann and bob apart again
    assert parts[0] == a and len(parts) == 2
    assert sorted(c.appearances for c in u.clusters()) == [1, 2]
    each = u.split(a, each=True)
    assert len(each) == 2 and len(u.clusters()) == 3
    assert u.dismiss(parts[1]) == 1
    assert len(u.clusters()) == 2
    with pytest.raises(GalleryError, match="no Unknown cluster #999"):
        u.dismiss(999)
    with pytest.raises(ValueError, match="two or more different"):
        u.merge([a, a])


def test_naming_a_cluster_enrolls_its_appearances_and_the_identifier_then_names_the_person(store):
    u = UnknownGallery(store)
    c = u.record(seen("ada"))
    u.record(seen("ada", track=2))
    assert u.name(c, "Ada Lovelace") == 2
    names, vectors = store.embeddings()
    assert names == ["Ada Lovelace"] * 2 and u.clusters() == []
    assert sorted(r.source_path for r in store.sources()) == sorted(
        f"unknown-appearance:{i}" for i in (1, 2))
    ident = Identifier(GalleryIndex(names, vectors), min_observations=3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        ident.update([FakeTrack(1, 0)], frame(noisy(person_vector("ada"), rng)))
    assert ident.get(1).name == "Ada Lovelace"
    u.record(seen("ada", track=3))
    assert u.name(u.clusters()[0].cluster_id, "Ada Lovelace") == 1       # an existing person gets more


def test_a_known_unknown_track_is_labelled_with_its_persistent_id(store):
    u = UnknownGallery(store)
    c = u.record(seen("stranger"))
    index = GalleryIndex(["alice"], person_vector("alice")[None])
    ident = Identifier(index, min_observations=3, unknowns=u.index())
    rng = np.random.default_rng(1)
    for _ in range(3):
        ident.update([FakeTrack(1, 0)], frame(noisy(person_vector("stranger"), rng, 1.0)))
        ident.update([FakeTrack(2, 0)], frame(noisy(person_vector("nobody seen"), rng, 1.0)))
    assert ident.get(1).name is None and ident.get(1).unknown_id == c and ident.get(1).label == f"Unknown #{c}"
    assert ident.get(2).unknown_id is None and ident.get(2).label is None
    for _ in range(3):
        ident.update([FakeTrack(3, 0)], frame(noisy(person_vector("alice"), rng, 1.0)))
    assert ident.get(3).label == "alice"


def test_a_negative_example_stops_a_wrong_name_from_recurring(store):
    u = UnknownGallery(store)
    alice = person_vector("alice")
    # The look-alike: closer to alice's template than the threshold, but someone else.
    lookalike = (0.6 * alice + 0.8 * person_vector("lookalike")).astype(np.float32)
    with store.write() as w:
        w.add_embedding("alice", alice)
    index = GalleryIndex(*store.embeddings())

    def shown_name(unknowns, track):
        ident = Identifier(index, min_observations=3, unknowns=unknowns)
        rng = np.random.default_rng(track)
        for _ in range(8):
            ident.update([FakeTrack(track, 0)], frame(noisy(lookalike, rng, 0.5)))
        return ident.get(track).name

    assert shown_name(u.index(), 1) == "alice"               # the mistake
    u.record(Appearance(lookalike, 8, (100.0,) * 8, T0, T0, "cam", 1, (), "alice"))   # the named appearance
    (named,) = u.appearances(named=True)
    assert named.named_as == "alice" and named.cluster_id is None
    assert u.not_person("alice", appearance_id=named.appearance_id) == 1
    assert shown_name(u.index(), 2) is None                  # "this is not alice" is respected
    ident = Identifier(index, min_observations=3, unknowns=u.index())
    rng = np.random.default_rng(5)
    for _ in range(8):
        ident.update([FakeTrack(9, 0)], frame(noisy(alice, rng, 0.5)))
    assert ident.get(9).name == "alice"                      # alice herself is still alice
    assert u.appearance_of_track(1, "cam") == named.appearance_id == u.appearance_of_track(1)
    with pytest.raises(GalleryError, match="no stored appearance of track #1 in garden"):
        u.appearance_of_track(1, "garden")
    with pytest.raises(GalleryError, match="no person named 'bob'"):
        u.not_person("bob", appearance_id=named.appearance_id)
    with pytest.raises(ValueError, match="exactly one"):
        u.not_person("alice")


def test_changes_are_transactions_rolled_back_on_error(store):
    u = UnknownGallery(store)
    c = u.record(seen("ann"))
    with pytest.raises(ValueError, match="must not contain /"):
        u.name(c, "bad/name")
    assert [x.cluster_id for x in u.clusters()] == [c] and store.people() == []
    with pytest.raises(ValueError, match="shape"):
        u.record(Appearance(np.ones(3, np.float32), 5, (100.0,), T0, T0))
    assert len(u.clusters()) == 1 and len(u.appearances()) == 1
    with pytest.raises(GalleryError):
        u.merge([c, 12345])
    assert [x.appearances for x in u.clusters()] == [1]


def test_a_version_1_gallery_is_migrated_in_place(db):
    conn = sqlite3.connect(db)
    for table in ("unknown_crops", "unknown_appearances", "unknown_clusters", "negatives"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.execute("INSERT INTO people(name, created) VALUES ('kept', 0)")
    conn.commit()
    conn.close()
    with GalleryStore(db, FakeIdentity()) as s:
        assert s.query("SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
        assert [p.name for p in s.people()] == ["kept"]
        assert UnknownGallery(s).record(seen("ann")) is not None
    assert file_mode(db) == 0o600


def test_the_evidence_model_keeps_tiny_faces_out_of_the_clusters():
    ident = Identifier(GalleryIndex(["a"], person_vector("a")[None]))
    model = ident.evidence_model
    assert join_separation(model, [112] * 10) > 5
    assert join_separation(model, [16] * 50) < 1.5
    assert join_separation(model, []) == 0.0


def result(tids, boxes, ended=(), detected=True):
    n = len(tids)
    return SimpleNamespace(detected=detected, track_ids=np.asarray(tids, np.int64),
                           xyxy=np.asarray(boxes, np.float32).reshape(n, 4), confidence=np.full(n, 0.9, np.float32),
                           predicted=np.zeros(n, bool), ended_ids=list(ended))


def test_the_recorder_stores_ended_unknown_tracks_with_their_best_crops(store):
    u = UnknownGallery(store)
    index = u.index()
    ident = Identifier(GalleryIndex(["alice"], person_vector("alice")[None]), min_observations=3, unknowns=index)
    rec = UnknownRecorder(u, ident, source="clip.mp4", index=index, max_crops=2)
    rng = np.random.default_rng(3)
    image = np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8)
    big, tiny = [50, 50, 250, 250], [300, 300, 312, 312]
    for k in range(6):
        det = frame(noisy(person_vector("stranger"), rng, 1.0), noisy(person_vector("far away"), rng, 1.0))
        ident.update([FakeTrack(1, 0), FakeTrack(2, 1)], det)
        rec.observe(image, result([1, 2], [big, tiny]))
    ident.forget([1])
    rec.observe(image, result([], [], ended=[1]))
    assert len(rec.recorded) == 1
    rec.finish()                                            # track 2's faces are 12 px: not remembered
    (cluster,) = u.clusters()
    assert cluster.appearances == 1 and cluster.sources == ("clip.mp4",)
    thumbs = u.thumbnails(cluster.cluster_id)
    assert len(thumbs) == 2
    face = cv2.imdecode(np.frombuffer(thumbs[0], np.uint8), cv2.IMREAD_COLOR)
    assert face.shape[0] == 112                             # scaled to crop_height
    assert len(index.cluster_ids) == 1                       # the identifier's index knows it now


def test_the_command_line_lists_names_merges_and_writes_a_private_contact_sheet(db, tmp_path, capsys):
    with GalleryStore(db, FakeIdentity()) as s:
        u = UnknownGallery(s)
        face = cv2.imencode(".jpg", np.full((112, 90, 3), 128, np.uint8))[1].tobytes()
        a = u.record(seen("ann", crops=((0.9, face),)))
        b = u.record(seen("bob", crops=((0.9, face),)))
        c = u.record(seen("cy", crops=()))
    sheet = tmp_path / "sheet.jpg"
    assert unknowns_cli.main(["--db", str(db), "list", "--sheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert f"Unknown #{a}" in out and f"Unknown #{c}" in out
    assert cv2.imread(str(sheet)).shape[1] == 3 * unknowns_cli.SHEET_CELL and file_mode(sheet) == 0o600
    assert unknowns_cli.main(["--db", str(db), "merge", str(a), str(c)]) == 0
    assert unknowns_cli.main(["--db", str(db), "name", str(b), "Bob Builder"]) == 0
    assert unknowns_cli.main(["--db", str(db), "not-person", str(a), "Bob Builder"]) == 0
    assert unknowns_cli.main(["--db", str(db), "not-person", "1", "Bob Builder", "--track", "--source", "cam"]) == 0
    assert unknowns_cli.main(["--db", str(db), "dismiss", "999"]) == unknowns_cli.EXIT_ERROR
    assert "no Unknown cluster #999" in capsys.readouterr().err
    assert unknowns_cli.main(["list"]) == unknowns_cli.EXIT_ERROR
    assert "unknowns list needs --db GALLERY" in capsys.readouterr().err
    assert unknowns_cli.main(["--db", str(tmp_path / "nothing.db"), "list"]) == unknowns_cli.EXIT_ERROR
    assert "no such file" in capsys.readouterr().err
    with GalleryStore(db, FakeIdentity()) as s:
        u = UnknownGallery(s)
        assert [(x.cluster_id, x.appearances) for x in u.clusters()] == [(a, 2)]
        assert [p.name for p in s.people()] == ["Bob Builder"] and len(u.negatives()["Bob Builder"]) == 3


def test_keyword_validation(store):
    with pytest.raises(ValueError, match="join_similarity"):
        UnknownGallery(store, join_similarity=2)
    with pytest.raises(ValueError, match="retention_days"):
        UnknownGallery(store, retention_days=-1)
    with pytest.raises(ValueError, match="store must be a GalleryStore"):
        UnknownGallery("gallery.db")
    with pytest.raises(ValueError, match="unknowns must be an UnknownIndex"):
        Identifier(GalleryIndex(["a"], person_vector("a")[None]), unknowns="x")


def test_a_dismissed_cluster_leaves_no_trace_of_its_faces_in_the_file(db):
    marker = b"FACE-CROP-OF-A-STRANGER-" * 40
    with GalleryStore(db, FakeIdentity()) as s:
        u = UnknownGallery(s)
        c = u.record(seen("stranger", crops=((0.9, marker),)))
        u.record(seen("someone else"))
        assert marker in db.read_bytes()
        u.dismiss(c)
    assert marker not in db.read_bytes()                     # secure_delete: freed pages are overwritten
    assert file_mode(db) == 0o600
