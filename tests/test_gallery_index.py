"""GalleryIndex: scores, margins, score modes, edge cases."""
from __future__ import annotations

import numpy as np
import pytest

from gallery.index import GalleryIndex, best_of, l2_normalize
from gallery.store import GalleryStore
from test_gallery_fakes import FakeIdentity, person_vector


def _unit(*coords, dim=8):
    v = np.zeros(dim, np.float32)
    v[: len(coords)] = coords
    return v / np.linalg.norm(v)


def test_query_matches_brute_force():
    rng = np.random.default_rng(1)
    vecs = l2_normalize(rng.standard_normal((30, 16)))
    names = [f"p{i % 7}" for i in range(30)]             # interleaved on purpose
    q = l2_normalize(rng.standard_normal((5, 16)))
    index = GalleryIndex(names, vecs, score_mode="max")
    sims = q @ vecs.T
    people = sorted(set(names))
    expected = np.array([[sims[:, [k for k, n in enumerate(names) if n == p]].max(axis=1)[i] for p in people]
                         for i in range(5)])
    np.testing.assert_allclose(index.person_scores(q), expected, atol=1e-5)
    m = index.query(q)
    for i in range(5):
        order = np.argsort(-expected[i])
        assert m.names[i] == people[order[0]]
        assert m.score[i] == pytest.approx(expected[i, order[0]], abs=1e-5)
        assert m.margin[i] == pytest.approx(expected[i, order[0]] - expected[i, order[1]], abs=1e-5)


def test_default_mode_is_the_mean_template():
    rng = np.random.default_rng(3)
    vecs = l2_normalize(rng.standard_normal((6, 16)))
    names = ["a", "b", "a", "b", "a", "c"]
    q = l2_normalize(rng.standard_normal((3, 16)))
    templates = l2_normalize(np.stack([vecs[[0, 2, 4]].mean(0), vecs[[1, 3]].mean(0), vecs[5]]))
    np.testing.assert_allclose(GalleryIndex(names, vecs).person_scores(q), q @ templates.T, atol=1e-5)


def test_score_modes():
    a1, a2, b = _unit(1, 0), _unit(0, 1), _unit(0.6, 0.8)
    q = _unit(1, 0)
    names = ["a", "a", "b"]
    vecs = np.stack([a1, a2, b])
    best = GalleryIndex(names, vecs, score_mode="max").person_scores(q)[0]
    mean = GalleryIndex(names, vecs, score_mode="mean").person_scores(q)[0]
    blend = GalleryIndex(names, vecs, score_mode="blend").person_scores(q)[0]
    assert best == pytest.approx([1.0, 0.6], abs=1e-6)
    assert mean == pytest.approx([np.sqrt(0.5), 0.6], abs=1e-6)       # template (1,1)/sqrt 2
    assert blend == pytest.approx([(1 + np.sqrt(0.5)) / 2, 0.6], abs=1e-6)


def test_single_person_margin_is_its_score_and_empty_gallery_names_nobody():
    index = GalleryIndex(["a"], _unit(1, 0)[None])
    m = index.query(_unit(0.8, 0.6))
    assert m.names == ["a"] and m.margin[0] == pytest.approx(m.score[0]) == pytest.approx(0.8, abs=1e-6)
    empty = GalleryIndex([], np.zeros((0, 8), np.float32))
    assert empty.empty and len(empty) == 0
    e = empty.query(np.ones((2, 8)))
    assert e.names == [None, None] and list(e.person) == [-1, -1]


def test_match_applies_threshold_and_margin():
    index = GalleryIndex(["a", "b"], np.stack([_unit(1, 0), _unit(0.9, 0.436)]))
    q = np.stack([_unit(1, 0), _unit(0, 1), _unit(0.96, 0.25)])
    m = index.match(q, similarity_threshold=0.5, min_margin=0.05)
    assert m.names[0] == "a"           # clear winner
    assert m.names[1] is None          # too dissimilar to both
    assert m.names[2] is None          # a and b within the margin


def test_bad_input():
    with pytest.raises(ValueError, match="score_mode"):
        GalleryIndex(["a"], np.ones((1, 4)), score_mode="median")
    with pytest.raises(ValueError, match="rows"):
        GalleryIndex(["a", "b"], np.ones((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        GalleryIndex(["a"], np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        GalleryIndex(["a"], np.ones((1, 4))).query(np.ones((2, 5)))
    with pytest.raises(ValueError, match="shape"):
        best_of(np.ones((2, 3)), ["a", "b"])


def test_from_store(tmp_path):
    with GalleryStore(tmp_path / "g.db", FakeIdentity()) as s:
        empty = GalleryIndex.from_store(s)
        assert empty.empty and empty.dim == 512
        with s.write() as w:
            for p in ("ann", "ben"):
                w.add_embedding(p, person_vector(p))
        index = GalleryIndex.from_store(s, score_mode="mean")
    assert index.people == ["ann", "ben"]
    assert index.query(person_vector("ben")).names == ["ben"]
