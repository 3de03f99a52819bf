"""The mean rule's size-aware threshold: small faces need less similarity, a large gallery more, strangers stay Unknown."""
from __future__ import annotations

import numpy as np
import pytest

from gallery.identifier import Identifier
from gallery.index import GalleryIndex
from gallery.naming_rules import MeanSimilarityRule
from gallery.size_threshold import SizeAwareThreshold
from test_gallery_evidence import TABLE, embedding, face, orthonormal
from test_gallery_fakes import FakeTrack

HEIGHTS = (16, 24, 32, 48, 64, 112)
SAME = (0.076, 0.199, 0.363, 0.532, 0.633, 0.745)
STD = (0.097, 0.103, 0.104, 0.097, 0.085, 0.073)


def threshold(rate=0.001, ceiling=0.35):
    return SizeAwareThreshold(HEIGHTS, SAME, STD, 0.078, rate, ceiling)


def test_large_faces_keep_the_ceiling_and_small_ones_come_down_to_the_floor():
    t = threshold()
    assert t.at(112, 18) == pytest.approx(0.35)
    assert t.at(300, 18) == pytest.approx(0.35)              # beyond the table: its end
    assert t.at(16, 18) == pytest.approx(t.floor(18))
    assert t.at(24, 18) == pytest.approx(t.floor(18))
    assert t.floor(18) < t.at(40, 18) <= 0.35                # in between: the table, interpolated
    assert t.at(40, 18) == pytest.approx(np.interp(40, HEIGHTS, np.subtract(SAME, STD)))


def test_the_floor_grows_with_the_gallery_past_the_ceiling():
    t = threshold()
    floors = [t.floor(n) for n in (1, 6, 18, 100, 1000, 100000)]
    assert floors == sorted(floors)
    # union bound: P(best of N strangers' scores >= floor) = rate when each is N(0, 0.078)
    assert t.floor(18) == pytest.approx(0.078 * 3.867, abs=0.002)
    assert t.at(24, 100000) > 0.35 and t.at(112, 100000) == pytest.approx(t.floor(100000))


def test_bad_tables_and_rates_are_refused():
    with pytest.raises(ValueError, match="increasing"):
        SizeAwareThreshold((32, 16), (0.1, 0.2), (0.1, 0.1), 0.078, 0.01, 0.35)
    with pytest.raises(ValueError, match="one per height"):
        SizeAwareThreshold((16, 32), (0.1,), (0.1, 0.1), 0.078, 0.01, 0.35)
    with pytest.raises(ValueError, match="stranger_match_rate"):
        threshold(rate=1.0)


def test_the_rule_uses_the_tracks_height_and_the_gallery_size():
    rule = MeanSimilarityRule(0.35, 0.08, 0.05, 3, threshold())
    people = [f"p{i}" for i in range(18)]
    scores = np.zeros(18)
    scores[3] = 0.32
    assert rule.decide(scores, people, None, 5, height=20).name == "p3"      # a small face: 0.32 is enough
    assert rule.decide(scores, people, None, 5, height=100).name is None      # a large one: not
    assert rule.decide(scores, people, None, 5).name is None                  # height unknown: the ceiling
    assert MeanSimilarityRule(0.35, 0.08, 0.05, 3).decide(scores, people, None, 5, height=20).name is None


def _identifier(n_people, **kw):
    basis = orthonormal(n_people)
    names = [f"p{i}" for i in range(n_people)]
    kw = {"min_confidence": 0.0, "full_confidence": 0.0, "size_aware_threshold": True,
          "stranger_match_rate": 0.001, **TABLE, "same_mean": SAME, "frame_std": STD, "different_spread": 0.078,
          **kw}
    return Identifier(GalleryIndex(names, basis[:-1].astype(np.float32)), **kw), basis


def _feed(ident, basis, sims, height, n):
    for _ in range(n):
        ident.update([FakeTrack(1, 0)], face(embedding(basis, sims), height))
    return ident.get(1)


def test_a_small_face_track_is_named_below_the_large_face_threshold():
    sims = np.zeros(6)
    sims[2] = 0.31
    ident, basis = _identifier(6)
    assert _feed(ident, basis, sims, 22, 5).name == "p2"
    ident, basis = _identifier(6, size_aware_threshold=False)
    assert _feed(ident, basis, sims, 22, 5).name is None
    ident, basis = _identifier(6)
    assert _feed(ident, basis, sims, 110, 5).name is None      # the same similarity on a large face: not enough


def test_a_small_face_close_to_two_people_stays_unknown():
    sims = np.zeros(6)
    sims[1], sims[4] = 0.33, 0.29                              # above the floor, but no margin
    ident, basis = _identifier(6)
    assert _feed(ident, basis, sims, 22, 8).name is None


def test_a_stranger_stays_unknown_as_the_gallery_grows_to_1000():
    """A stranger's small-face track scores like the best of N different people (spread 0.078).

    No margin here, so that the floor alone is tested; a floor that ignored the
    gallery's size (that of one person) would name most of them at 1,000.
    """
    rng = np.random.default_rng(3)
    ident, _ = _identifier(2, min_margin=0.0)
    for n in (10, 100, 1000):
        people = [f"p{i}" for i in range(n)]
        trials = [0.078 * rng.standard_normal(n) for _ in range(200)]
        named = sum(ident.rule.decide(s, people, None, 10, height=20).name is not None for s in trials)
        assert named <= 2, (n, named)                          # expected 0.2 of 200 at rate 0.001
        one_person_floor = ident.rule.by_size.floor(1)
        assert n < 1000 or sum(s.max() >= one_person_floor for s in trials) > 80   # 1 - 0.999 ** 1000 = 63 %


def _feed_at(ident, basis, track_id, sims, height, n, start):
    """``n`` frames of one track, a second apart from ``start``; returns its identity."""
    for k in range(n):
        ident.update([FakeTrack(track_id, 0)], face(embedding(basis, sims), height), timestamp=start + k)
    return ident.get(track_id)


def test_a_small_face_name_needs_a_confident_sighting_of_that_person_nearby():
    small, large = np.zeros(6), np.zeros(6)
    small[2], large[2] = 0.31, 0.6
    ident, basis = _identifier(6, corroboration_seconds=30)
    assert _feed_at(ident, basis, 1, small, 22, 5, start=0).name is None      # nobody has seen p2 clearly
    assert _feed_at(ident, basis, 2, large, 110, 5, start=10).name == "p2"    # a close-up names p2 at 12-14 s
    assert _feed_at(ident, basis, 3, small, 22, 5, start=20).name == "p2"     # the wide shot after it: named
    assert _feed_at(ident, basis, 4, small, 22, 5, start=60).name is None     # 46 s later: no longer
    assert ident.get(3).name == "p2"                                          # a given name is kept
    assert _feed_at(ident, basis, 3, small, 22, 3, start=61).name == "p2"
    ident.reset()
    assert _feed_at(ident, basis, 5, small, 22, 5, start=20).name is None     # a new source forgets the sighting


def test_corroboration_off_names_small_faces_on_their_own_and_large_faces_never_need_it():
    small, large = np.zeros(6), np.zeros(6)
    small[2], large[4] = 0.31, 0.6
    ident, basis = _identifier(6)
    assert ident.corroboration_seconds == 0
    assert _feed_at(ident, basis, 1, small, 22, 5, start=0).name == "p2"
    ident, basis = _identifier(6, corroboration_seconds=30)
    assert _feed_at(ident, basis, 1, large, 110, 5, start=0).name == "p4"     # confident: named at once
    assert _feed_at(ident, basis, 2, small, 22, 5, start=5).name is None      # p4's sighting does not vouch for p2
    with pytest.raises(ValueError, match="corroboration_seconds"):
        _identifier(6, corroboration_seconds=-1)
