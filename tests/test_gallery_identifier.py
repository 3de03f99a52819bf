"""Identifier on synthetic embeddings: evidence over a track's life, never at creation."""
from __future__ import annotations

import numpy as np
import pytest

from gallery.identifier import Identifier
from gallery.index import GalleryIndex, l2_normalize
from test_gallery_fakes import DIM, FakeTrack, person_vector
from tracker.detections import Detections

# One noisy observation of a person scores about 0.3 against their template
# (the similarity the project's first attempt saw); the mean of ten ~0.7.
NOISE = 3.2


def noisy(person_vec: np.ndarray, rng, noise: float = NOISE) -> np.ndarray:
    return l2_normalize(person_vec + noise * rng.standard_normal(DIM) / np.sqrt(DIM))


def frame(*embeddings) -> Detections:
    n = len(embeddings)
    boxes = np.array([[10 * i, 0, 10 * i + 100, 120] for i in range(n)], np.float32).reshape(-1, 4)
    return Detections(xyxy=boxes, confidence=np.full(n, 0.9, np.float32),
                      embedding=np.array(embeddings, np.float32).reshape(n, DIM))


@pytest.fixture
def index():
    names = ["alice", "bob", "carol"]
    return GalleryIndex(names, np.stack([person_vector(n) for n in names]))


def test_single_noisy_observation_scores_low(index):
    rng = np.random.default_rng(0)
    s = [index.person_scores(noisy(person_vector("alice"), rng))[0, 0] for _ in range(50)]
    assert 0.2 < np.mean(s) < 0.4


def test_not_named_at_creation_nor_before_min_observations(index):
    rng = np.random.default_rng(1)
    ident = Identifier(index, similarity_threshold=0.35, min_margin=0.08, min_observations=5)
    names = []
    for _ in range(20):
        ident.update([FakeTrack(1, 0)], frame(noisy(person_vector("alice"), rng)))
        names.append(ident.get(1).name)
    assert names[:4] == [None] * 4                     # creation and before 5 observations
    assert names[-1] == "alice"
    got = ident.get(1)
    assert got.observations == 20 and got.score > 0.6 and got.margin > 0.3


def test_even_a_perfect_first_frame_is_not_named(index):
    ident = Identifier(index, min_observations=2)
    ident.update([FakeTrack(1, 0)], frame(person_vector("alice")))
    assert ident.get(1).name is None and ident.get(1).observations == 1
    ident.update([FakeTrack(1, 0)], frame(person_vector("alice")))
    assert ident.get(1).name == "alice"


@pytest.mark.parametrize("track, evidence", [
    (FakeTrack(7, None, time_since_update=1), 0),      # coasting, not matched this frame
    (FakeTrack(7, 0, time_since_update=2), 0),         # stale det_index must be ignored too
    (FakeTrack(7, 0, confirmed=False), 30),            # tentative: evidence, but no name
])
def test_a_track_never_matched_or_confirmed_is_never_named(index, track, evidence):
    ident = Identifier(index, min_observations=1)
    for _ in range(30):
        ident.update([track], frame(person_vector("alice")))
    assert ident.get(7).name is None and ident.get(7).observations == evidence
    assert ident.identities() == {}


def test_two_people_closer_than_the_margin_stay_unknown():
    rng = np.random.default_rng(2)
    a = person_vector("twin-a")
    b = l2_normalize(a + 0.15 * rng.standard_normal(DIM) / np.sqrt(DIM))   # cos(a, b) ~ 0.99
    index = GalleryIndex(["twin_a", "twin_b"], np.stack([a, b]))
    ident = Identifier(index, similarity_threshold=0.35, min_margin=0.08, min_observations=3)
    mid = l2_normalize(a + b)
    for _ in range(40):
        ident.update([FakeTrack(1, 0)], frame(noisy(mid, rng, noise=0.5)))
    got = ident.get(1)
    assert got.name is None and got.score > 0.8 and got.margin < 0.08


def test_a_wrong_early_frame_does_not_flip_a_settled_name(index):
    rng = np.random.default_rng(3)
    ident = Identifier(index, min_observations=3)
    for _ in range(10):
        ident.update([FakeTrack(1, 0)], frame(noisy(person_vector("alice"), rng)))
    assert ident.get(1).name == "alice"
    ident.update([FakeTrack(1, 0)], frame(person_vector("bob")))     # one clean frame of someone else
    assert ident.get(1).name == "alice"


def test_name_is_withdrawn_when_the_evidence_turns(index):
    rng = np.random.default_rng(4)
    ident = Identifier(index, min_observations=3, evidence_half_life=10)
    for _ in range(15):
        ident.update([FakeTrack(1, 0)], frame(noisy(person_vector("alice"), rng)))
    assert ident.get(1).name == "alice"
    seen = []
    for _ in range(60):                                 # the tracker swapped faces: now bob
        ident.update([FakeTrack(1, 0)], frame(noisy(person_vector("bob"), rng)))
        seen.append(ident.get(1).name)
    assert seen[0] == "alice"
    assert seen[-1] == "bob"


def test_low_quality_evidence_is_skipped(index):
    ident = Identifier(index, min_observations=2, min_quality=0.3)
    for _ in range(5):
        ident.update([FakeTrack(1, 0)], frame(person_vector("alice")), quality=np.array([0.1]))
    assert ident.get(1).observations == 0 and ident.get(1).name is None
    rng = np.random.default_rng(5)
    # a good face outweighs many poor ones: weights follow quality
    for _ in range(10):
        ident.update([FakeTrack(2, 0)], frame(noisy(person_vector("bob"), rng, noise=0.3)), quality=np.array([1.0]))
    for _ in range(10):
        ident.update([FakeTrack(2, 0)], frame(noisy(person_vector("carol"), rng, noise=0.3)),
                     quality=np.array([0.31]))
    assert ident.get(2).name == "bob"


def test_many_tracks_map_to_their_rows_by_det_index(index):
    rng = np.random.default_rng(6)
    ident = Identifier(index, min_observations=3)
    for _ in range(10):
        embs = [noisy(person_vector(p), rng) for p in ("alice", "bob", "carol")]
        dets = frame(*embs)
        # detections given as a subset keep their det_index
        sub = dets[np.array([2, 0])]
        ident.update([FakeTrack(10, 2), FakeTrack(11, 0)], sub)
    assert ident.get(10).name == "carol" and ident.get(11).name == "alice"


def test_forget_and_revive(index):
    ident = Identifier(index, min_observations=2)
    for _ in range(3):
        ident.update([FakeTrack(1, 0)], frame(person_vector("alice")))
    assert ident.get(1).name == "alice"
    # lost for a while (no evidence), then revived by the tracker: keeps its name
    for _ in range(5):
        ident.update([FakeTrack(1, None, time_since_update=3)], frame())
    ident.update([FakeTrack(1, 0, revived=True)], frame(person_vector("alice")))
    assert ident.get(1).name == "alice" and ident.get(1).observations == 4
    ident.forget([1])
    assert ident.get(1).name is None and ident.get(1).observations == 0
    ids, embs = ident.unknown_embeddings()
    assert ids == [] and embs.shape == (0, DIM)


def test_unknown_embeddings_for_clustering():
    index = GalleryIndex(["alice"], person_vector("alice")[None])
    ident = Identifier(index, min_observations=2)
    for _ in range(3):
        ident.update([FakeTrack(1, 0), FakeTrack(2, 1)], frame(person_vector("alice"), person_vector("zed")))
    ids, embs = ident.unknown_embeddings()
    assert ids == [2]
    np.testing.assert_allclose(embs[0], person_vector("zed"), atol=1e-5)
    np.testing.assert_allclose(ident.track_embedding(1), person_vector("alice"), atol=1e-5)


def test_ended_unknown_tracks_are_kept_in_memory_for_clustering_up_to_the_cap():
    index = GalleryIndex(["alice"], person_vector("alice")[None])
    ident = Identifier(index, min_observations=2, max_ended_unknowns=2)
    for tid, who in ((1, "alice"), (2, "zed"), (3, "yan"), (4, "xia")):
        for _ in range(3):
            ident.update([FakeTrack(tid, 0)], frame(person_vector(who)))
        ident.forget([tid])
    assert ident.unknown_embeddings()[0] == []                           # nothing live
    ids, embs = ident.unknown_embeddings(include_ended=True)
    assert ids == [3, 4]                                                 # the newest two; named alice never kept
    np.testing.assert_allclose(embs[1], person_vector("xia"), atol=1e-5)
    ident.reset()
    assert ident.unknown_embeddings(include_ended=True)[0] == []
    off = Identifier(index, min_observations=2, max_ended_unknowns=0)
    for _ in range(3):
        off.update([FakeTrack(9, 0)], frame(person_vector("zed")))
    off.forget([9])
    assert off.unknown_embeddings(include_ended=True)[0] == []


def test_the_demo_summary_groups_unknown_tracks_into_people():
    from facetrack.demo_cli import unknown_people

    index = GalleryIndex(["alice"], person_vector("alice")[None])
    ident = Identifier(index, min_observations=2)
    for tid, who in ((1, "zed"), (2, "zed"), (3, "yan")):
        for _ in range(3):
            ident.update([FakeTrack(tid, 0)], frame(person_vector(who)))
        ident.forget([tid])
    assert unknown_people(ident) == "Unknown: 3 tracks of about 2 people (clustered at similarity 0.35)"
    assert unknown_people(None) is None and unknown_people(Identifier(index)) is None


def test_errors(index):
    ident = Identifier(index)
    with pytest.raises(ValueError, match="no embeddings"):
        ident.update([FakeTrack(1, 0)], Detections(xyxy=np.zeros((1, 4)), confidence=[0.9]))
    with pytest.raises(ValueError, match="quality"):
        ident.update([FakeTrack(1, 0)], frame(person_vector("alice")), quality=np.ones(3))
    with pytest.raises(ValueError, match="det_index 5"):
        ident.update([FakeTrack(1, 5)], frame(person_vector("alice")))


def test_empty_gallery_names_nobody():
    ident = Identifier(GalleryIndex([], np.zeros((0, DIM))), min_observations=1)
    for _ in range(3):
        ident.update([FakeTrack(1, 0)], frame(person_vector("alice")))
    assert ident.get(1).name is None and ident.get(1).observations == 3


@pytest.mark.parametrize("keyword, value", [
    ("similarity_threshold", 1.5), ("min_margin", -0.1), ("min_observations", 0), ("min_observations", 2.5),
    ("min_quality", 1.2), ("min_weight", 0.0), ("min_weight", 1.5), ("hysteresis", -0.01), ("evidence_half_life", -1.0), ("evidence_half_life", float("inf")),
    ("min_confidence", -0.1), ("full_confidence", 1.5),
])
def test_keyword_validation(index, keyword, value):
    with pytest.raises(ValueError, match=keyword):
        Identifier(index, **{keyword: value})


def test_index_type_is_checked():
    with pytest.raises(ValueError, match="index"):
        Identifier(object())


def _at_similarity(target: np.ndarray, cos: float, orth: np.ndarray) -> np.ndarray:
    return (cos * target + np.sqrt(1 - cos ** 2) * orth).astype(np.float32)


def test_hysteresis_keeps_a_name_through_a_small_dip_but_not_a_large_one():
    a = person_vector("alice")
    rng = np.random.default_rng(7)
    orth = rng.standard_normal(DIM)
    orth = l2_normalize(orth - (orth @ a) * a)
    index = GalleryIndex(["alice"], a[None])
    ident = Identifier(index, similarity_threshold=0.5, min_margin=0.0, min_observations=2,
                       hysteresis=0.1, evidence_half_life=0.5)          # evidence follows the last frames
    for _ in range(3):
        ident.update([FakeTrack(1, 0)], frame(_at_similarity(a, 0.6, orth)))
    assert ident.get(1).name == "alice"
    for _ in range(5):
        ident.update([FakeTrack(1, 0)], frame(_at_similarity(a, 0.45, orth)))
    assert ident.get(1).score == pytest.approx(0.45, abs=0.01)
    assert ident.get(1).name == "alice"                 # below the threshold, above threshold - hysteresis
    # a fresh track with the same evidence is not named: the name was kept by hysteresis alone
    for _ in range(5):
        ident.update([FakeTrack(2, 0)], frame(_at_similarity(a, 0.45, orth)))
    assert ident.get(2).name is None
    for _ in range(5):
        ident.update([FakeTrack(1, 0)], frame(_at_similarity(a, 0.3, orth)))
    assert ident.get(1).name is None                    # withdrawn


def test_a_challenger_must_win_by_the_margin_to_take_over(index):
    a, b = person_vector("alice"), person_vector("bob")
    ident = Identifier(index, similarity_threshold=0.3, min_margin=0.1, min_observations=1, evidence_half_life=0.5)
    mix = lambda wa, wb: l2_normalize(wa * a + wb * b)   # noqa: E731
    for _ in range(3):
        ident.update([FakeTrack(1, 0)], frame(mix(1.0, 0.2)))
    assert ident.get(1).name == "alice"
    for _ in range(5):                                  # bob slightly ahead, by less than the margin
        ident.update([FakeTrack(1, 0)], frame(mix(0.9, 1.0)))
    assert ident.get(1).name == "alice"
    for _ in range(5):                                  # bob clearly ahead
        ident.update([FakeTrack(1, 0)], frame(mix(0.2, 1.0)))
    assert ident.get(1).name == "bob"


def test_zero_quality_evidence_still_counts_with_the_minimum_weight(index):
    ident = Identifier(index, min_observations=2, min_quality=0.0, min_weight=0.05)
    for _ in range(3):                                   # a profile face: quality score 0, embedding still informative
        ident.update([FakeTrack(1, 0)], frame(person_vector("alice")), quality=np.array([0.0]))
    assert ident.get(1).name == "alice" and ident.get(1).observations == 3


def test_low_scoring_detections_weigh_less_with_the_confidence_ramp(index):
    # Ten half-visible faces (detector score 0.6) look like carol, then ten
    # clear ones (0.9) like bob. With the ramp (0.7 -> 0.85) the half-visible
    # ones count only min_weight each and bob wins at once; without it the
    # two halves weigh the same and the mean sits between them.
    rng = np.random.default_rng(11)
    half = [noisy(person_vector("carol"), rng, noise=0.3) for _ in range(10)]
    clear = [noisy(person_vector("bob"), rng, noise=0.3) for _ in range(10)]
    names = {}
    for ramp in ((0.7, 0.85), (0.0, 0.0)):
        ident = Identifier(index, min_observations=2, evidence_half_life=0.0,
                           min_confidence=ramp[0], full_confidence=ramp[1])
        for scores, faces in ((0.6, half), (0.9, clear[:3])):
            for e in faces:
                det = frame(e)
                ident.update([FakeTrack(1, 0)], Detections(det.xyxy, np.array([scores], np.float32), embedding=det.embedding))
        names[ramp] = ident.get(1).name
    assert names[(0.7, 0.85)] == "bob"
    assert names[(0.0, 0.0)] == "carol"


def test_held_tracks_are_named_tentative_ones_only_gather_evidence(index):
    class Held(FakeTrack):
        held = True

    ident = Identifier(index, min_observations=2)
    for _ in range(3):
        ident.update([Held(1, 0, confirmed=False), FakeTrack(2, 1, confirmed=False)],
                     frame(person_vector("alice"), person_vector("bob")))
    assert ident.get(1).name == "alice"
    assert ident.get(2).name is None and ident.get(2).observations == 3
    assert list(ident.identities()) == [1]


def test_a_track_is_named_on_the_hit_that_confirms_it_from_its_tentative_evidence(index):
    """Evidence is gathered over the whole life of a track, tentative frames
    included, but a name is given only once the track is confirmed."""
    ident = Identifier(index, min_observations=3)
    for _ in range(2):
        ident.update([FakeTrack(4, 0, confirmed=False)], frame(person_vector("bob")))
        assert ident.get(4).name is None
    assert ident.unknown_embeddings(min_observations=1)[0] == []     # never confirmed: not an Unknown face
    ident.update([FakeTrack(4, 0, confirmed=True)], frame(person_vector("bob")))
    assert ident.get(4).name == "bob" and ident.get(4).observations == 3

