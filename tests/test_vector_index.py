"""The vector index: recall against exact search, kept in step with the gallery, rebuilt when missing or stale."""
from __future__ import annotations

import logging
import os
import sqlite3
import stat

import numpy as np
import pytest

from gallery.bench import benchmark_query, format_bench, person_views
from gallery.index import GalleryIndex, best_of
from gallery.store import GalleryStore
from gallery.vector_index import SyncReport, VectorIndex, open_synced
from test_gallery_fakes import FakeIdentity
from tracker.vectors import random_unit_vectors

DIM = 128
PER_PERSON = 5


def _gallery(people: int, rng, dim: int = DIM):
    centres = random_unit_vectors(people, dim, rng)
    person = np.arange(people * PER_PERSON) // PER_PERSON
    return centres, person, person_views(centres, person, rng)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centres, person, vectors = _gallery(800, rng)            # 4,000 embeddings
    queries = person_views(centres, rng.integers(0, 800, 400), rng)
    return centres, person, vectors, queries


@pytest.mark.parametrize("mode", ["mean", "max", "blend"])
def test_the_index_names_the_best_person_of_exact_search(data, mode):
    _, person, vectors, queries = data
    names = [f"p{p:04d}" for p in person]
    shuffled = np.random.default_rng(1).permutation(len(names))       # rows not grouped by person
    index = GalleryIndex([names[i] for i in shuffled], vectors[shuffled], score_mode=mode, exact_below=1000)
    assert index.vector_index is not None and len(index.vector_index) == len(names)
    found, exact = index.query(queries), index.query(queries, exact=True)
    assert np.mean(found.person == exact.person) >= 0.99
    dense = best_of(index.person_scores(queries), index.people)        # the (N, P) matrix says the same
    np.testing.assert_array_equal(found.person, dense.person)
    np.testing.assert_allclose(found.margin, dense.margin, atol=1e-6)
    assert len(index.query(np.zeros((0, DIM), np.float32))) == 0
    same = found.person == exact.person
    np.testing.assert_allclose(found.score[same], exact.score[same], atol=1e-5)   # the best is scored exactly


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_the_margin_over_a_look_alike_is_that_of_exact_search(data, mode):
    centres, person, vectors, _ = data
    rng = np.random.default_rng(2)
    twins = person_views(centres, np.arange(100), rng)             # look-alikes of the first 100 people
    twin_rows = person_views(twins, np.repeat(np.arange(100), PER_PERSON), rng)
    names = [f"p{p:04d}" for p in person] + [f"twin{p:03d}" for p in np.repeat(np.arange(100), PER_PERSON)]
    index = GalleryIndex(names, np.concatenate([vectors, twin_rows]), score_mode=mode, exact_below=1000)
    queries = person_views(centres, np.arange(100), rng)
    found, exact = index.query(queries), index.query(queries, exact=True)
    np.testing.assert_array_equal(found.person, exact.person)
    np.testing.assert_allclose(found.margin, exact.margin, atol=1e-5)


def test_below_the_crossover_search_is_exact(data):
    _, person, vectors, queries = data
    index = GalleryIndex([f"p{p:04d}" for p in person], vectors, exact_below=len(person) + 1)
    assert index.vector_index is None
    np.testing.assert_array_equal(index.person_scores(queries), index.person_scores(queries, exact=True))


def test_a_small_gallery_gives_exactly_the_same_best_person_and_scores():
    rng = np.random.default_rng(3)
    centres, person, vectors = _gallery(40, rng)                      # 200 embeddings, few cells
    queries = person_views(centres, rng.integers(0, 40, 100), rng)
    index = GalleryIndex([f"p{p}" for p in person], vectors, exact_below=100, nprobe=1000)
    found, exact = index.query(queries), index.query(queries, exact=True)
    np.testing.assert_array_equal(found.person, exact.person)
    np.testing.assert_allclose(found.score, exact.score, atol=1e-5)


def test_add_remove_and_sync_keep_the_index_in_step(data):
    _, _, vectors, queries = data
    ids = np.arange(100, 100 + len(vectors))
    vi = VectorIndex(DIM, nprobe=64).build(ids[:3000], vectors[:3000])
    vi.add(ids[3000:], vectors[3000:])
    assert len(vi) == len(vectors)
    _, top = vi.search(vectors[3500:3510], 1)
    np.testing.assert_array_equal(top[:, 0], ids[3500:3510])         # the added rows are found
    assert vi.remove(ids[3500:3510]) == 10
    _, top = vi.search(vectors[3500:3510], 5)
    assert not np.isin(top, ids[3500:3510]).any()                     # removed rows are never returned
    with pytest.raises(ValueError, match="new and distinct"):
        vi.add(ids[:1], vectors[:1])
    changed = vectors.copy()
    changed[0] = vectors[1]                                           # an id whose vector changed
    report = vi.sync(ids[:-5], changed[:-5])                          # 5 gone, 10 back, 1 changed
    assert (report.added, report.removed, report.replaced) == (10, 5, 1)
    np.testing.assert_array_equal(vi.ids, ids[:-5])
    _, top = vi.search(vectors[1:2], 2)
    assert set(top[0]) == {ids[0], ids[1]}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="nprobe"):
        VectorIndex(DIM, nprobe=0)
    with pytest.raises(ValueError, match="shape"):
        VectorIndex(DIM, nprobe=1).build(np.arange(3), np.zeros((3, DIM + 1), np.float32))
    with pytest.raises(ValueError, match="distinct"):
        GalleryIndex(["a", "b"], np.eye(2, DIM, dtype=np.float32), [4, 4])
    with pytest.raises(ValueError, match="exact_below"):
        GalleryIndex(["a"], np.eye(1, DIM, dtype=np.float32), exact_below=0)


# -- the saved index and the gallery file ------------------------------------------
def _store(tmp_path, centres, people=range(60)):
    store = GalleryStore(tmp_path / "g.db", FakeIdentity(dim=DIM))
    rng = np.random.default_rng(5)
    with store.write() as w:
        for p in people:
            for v in person_views(centres, np.full(PER_PERSON, p), rng):
                w.add_embedding(f"p{p:03d}", v)
    return store


def _check_against_exact(store, queries, index_file):
    index = GalleryIndex.from_store(store, exact_below=50, index_file=index_file)
    assert index.vector_index is not None
    found, exact = index.query(queries), index.query(queries, exact=True)
    assert found.names == exact.names
    return index


def _opened(store, path, caplog):
    ids, _, vectors = store.embeddings_with_ids()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gallery.vector_index"):
        _, report = open_synced(path, store.stamp(), ids, vectors, nprobe=8)
    return report


def test_the_saved_index_follows_enrollment_removal_and_renames(tmp_path, caplog):
    rng = np.random.default_rng(11)
    centres = random_unit_vectors(80, DIM, rng)
    store = _store(tmp_path, centres)
    path = tmp_path / "g.db.ivf"
    queries = person_views(centres, np.arange(60), rng)
    _check_against_exact(store, queries, path)
    assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600     # face data: owner only
    assert _opened(store, path, caplog) == SyncReport(0, 0, 0, rebuilt=False)        # in step: used as is
    generation = store.stamp()[1]
    with store.write() as w:                                          # enrollment of new people
        for v in person_views(centres, np.full(PER_PERSON, 70), rng):
            w.add_embedding("p070", v)
    assert store.stamp()[1] > generation
    assert _opened(store, path, caplog).added == PER_PERSON
    store.remove_person("p003")
    assert _opened(store, path, caplog).removed == PER_PERSON
    store.rename_person("p005", "ada")
    report = _opened(store, path, caplog)
    assert not report.rebuilt and not report.added and not report.removed
    index = _check_against_exact(store, person_views(centres, np.array([5, 70, 3]), rng), path)
    m = index.query(person_views(centres, np.array([5, 70, 3]), rng))
    assert m.names[:2] == ["ada", "p070"] and m.names[2] != "p003"


def test_a_missing_damaged_or_foreign_index_is_rebuilt(tmp_path, caplog):
    rng = np.random.default_rng(12)
    centres = random_unit_vectors(60, DIM, rng)
    store = _store(tmp_path, centres)
    path = tmp_path / "g.db.ivf"
    assert _opened(store, path, caplog).rebuilt                       # missing
    path.write_bytes(path.read_bytes()[:200])                         # damaged
    assert _opened(store, path, caplog).rebuilt and "not usable" in caplog.text
    other = GalleryStore(tmp_path / "other.db", FakeIdentity(dim=DIM))
    ids, _, vectors = store.embeddings_with_ids()
    open_synced(tmp_path / "other.ivf", other.stamp(), ids, vectors, nprobe=8)
    path.write_bytes((tmp_path / "other.ivf").read_bytes())           # another gallery's file
    assert _opened(store, path, caplog).rebuilt and "another gallery" in caplog.text
    _check_against_exact(store, person_views(centres, np.arange(60), rng), path)


def test_a_stale_index_is_detected_even_when_an_id_is_reused(tmp_path, caplog):
    rng = np.random.default_rng(13)
    centres = random_unit_vectors(60, DIM, rng)
    store = _store(tmp_path, centres)
    path = tmp_path / "g.db.ivf"
    _opened(store, path, caplog)
    last = int(store.embeddings_with_ids()[0].max())
    with store.write() as w:                                          # SQLite gives the deleted last id again
        w.remove_embeddings([last])
        assert w.add_embedding("p001", centres[1]) == last
    report = _opened(store, path, caplog)
    assert report.replaced == 1 and not report.rebuilt


def test_an_older_gallery_gets_the_change_counter_when_opened(tmp_path):
    rng = np.random.default_rng(14)
    store = _store(tmp_path, random_unit_vectors(5, DIM, rng), people=range(5))
    store.close()
    conn = sqlite3.connect(tmp_path / "g.db")                         # as written before the counter existed
    for name in [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM meta WHERE key IN ('generation', 'gallery_uid')")
    conn.commit()
    conn.close()
    with GalleryStore(tmp_path / "g.db") as again:
        uid, generation = again.stamp()
        assert uid and generation == 0
        again.rename_person("p001", "ada")
        assert again.stamp() == (uid, 1)


def test_the_bench_reports_recall_and_the_time_to_add():
    results = benchmark_query([2000], batch=4, dim=64, repeats=2, recall_queries=100, add=200, exact_below=1000)
    r = results[0]
    assert r.search == "index" and r.recall_at_1 >= 0.95 and r.add_s is not None and r.added == 200
    assert "recall@1" in format_bench(results) and "index" in format_bench(results)
