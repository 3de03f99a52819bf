"""The evidence rule on synthetic similarities: weak but consistent faces add up, split or unenrolled ones never do.

Templates are exactly orthonormal, so a frame's embedding can be built to have
chosen cosine similarities to every enrolled person.
"""
from __future__ import annotations

import numpy as np
import pytest

from gallery.evidence import EvidenceModel, TrackEvidence, posteriors
from gallery.identifier import Identifier
from gallery.index import GalleryIndex
from test_gallery_fakes import FakeTrack
from tracker.detections import Detections

DIM = 1536


def orthonormal(n: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((DIM, n + 1)))
    return q.T.astype(np.float64)          # (n + 1, DIM): n templates and one free direction


def embedding(basis: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """A unit vector whose cosine with template q is sims[q] (the rest along the free direction)."""
    sims = np.asarray(sims, float)
    rest = 1.0 - float(np.sum(sims ** 2))
    assert rest > 0
    return (sims @ basis[:-1] + np.sqrt(rest) * basis[-1]).astype(np.float32)


def face(emb: np.ndarray, height: float, confidence: float = 0.9) -> Detections:
    return Detections(np.array([[10, 10, 10 + height, 10 + height]], np.float32),
                      np.array([confidence], np.float32), embedding=emb[None])


#: A fixed table for these tests (the shape of a measured one), so they test the rule, not the measurement.
TABLE = dict(evidence_heights=(16, 24, 32, 48, 64, 112), same_mean=(0.256, 0.424, 0.556, 0.674, 0.721, 0.769),
             different_mean=(0.003, 0.009, 0.004, 0.009, 0.013, 0.013),
             frame_std=(0.101, 0.099, 0.094, 0.078, 0.074, 0.073), same_spread=0.12, different_spread=0.07)


def identifier(n_people: int, seed: int = 0, **kw):
    basis = orthonormal(n_people, seed)
    names = [f"p{i}" for i in range(n_people)]
    kw = {"naming_rule": "evidence", "min_confidence": 0.0, "full_confidence": 0.0, **TABLE, **kw}
    return Identifier(GalleryIndex(names, basis[:-1].astype(np.float32)), **kw), basis


def decide(n_people, frames, **kw):
    """The evidence rule fed synthetic similarities directly (any gallery size): names after each frame."""
    ident, _ = identifier(1, **kw)
    rule, model, track, names = ident.rule, ident.rule.model, TrackEvidence(), []
    people = [f"p{i}" for i in range(n_people)]
    name, n = None, 0
    for sims, height in frames:
        u, precision, inverse_gap2 = model.normalise(np.asarray(sims)[None], np.array([height]))
        track.add(u[0], precision[0], inverse_gap2[0])
        n += 1
        name = rule.decide(np.asarray(sims), people, name, n, evidence=track).name
        names.append(name)
    return names


def run(ident, basis, frames):
    names = []
    for sims, height in frames:
        ident.update([FakeTrack(1, 0)], face(embedding(basis, sims), height))
        names.append(ident.get(1).name)
    return names


def weak_frames(rng, n_people, who, n, height=16, same=0.25, noise=0.1, offsets=None):
    offsets = np.zeros(n_people) if offsets is None else offsets
    for _ in range(n):
        sims = offsets + noise * rng.standard_normal(n_people) / 3
        if who is not None:
            sims[who] = same + noise * rng.standard_normal() / 3
        yield np.clip(sims, -0.3, 0.9), height


def test_many_weak_consistent_frames_are_named_and_a_few_are_not():
    rng = np.random.default_rng(1)
    ident, basis = identifier(6)
    names = run(ident, basis, weak_frames(rng, 6, who=2, n=80))
    assert names[:3] == [None] * 3              # a few 16 px faces are not enough
    assert names[-1] == "p2"                    # many are
    assert ident.get(1).posterior >= 0.99


def test_one_clear_large_face_is_named_after_min_observations():
    rng = np.random.default_rng(2)
    ident, basis = identifier(6, min_observations=3)
    names = run(ident, basis, weak_frames(rng, 6, who=4, n=3, height=112, same=0.75, noise=0.05))
    assert names == [None, None, "p4"]


def test_weak_frames_split_between_two_people_stay_unknown():
    rng = np.random.default_rng(3)
    ident, basis = identifier(6)
    frames = []
    for k in range(200):
        frames += list(weak_frames(rng, 6, who=0 if k % 2 else 1, n=1))
    assert set(run(ident, basis, frames)) == {None}


@pytest.mark.parametrize("height", [16, 48, 112])
def test_a_person_not_enrolled_stays_unknown_as_the_gallery_grows_to_1000(height):
    """An unenrolled face resembles each random identity by a fixed amount (not
    independently per frame) and its frames add noise on top."""
    rng = np.random.default_rng(4)
    for n_people in (10, 100, 1000):
        offsets = 0.07 * rng.standard_normal(n_people)
        names = decide(n_people, weak_frames(rng, n_people, who=None, n=150, height=height, noise=0.3,
                                             offsets=offsets))
        assert set(names) == {None}, (n_people, height)


def test_an_enrolled_person_among_1000_is_still_named_from_many_weak_frames():
    rng = np.random.default_rng(5)
    offsets = 0.07 * rng.standard_normal(1000)
    names = decide(1000, weak_frames(rng, 1000, who=7, n=150, height=24, same=0.4, noise=0.3, offsets=offsets))
    assert names[-1] == "p7" and names[0] is None


def test_a_larger_gallery_needs_more_evidence():
    llr = np.array([6.0, 0.0])
    small, _ = posteriors(llr, 0.5)
    large, _ = posteriors(np.concatenate([llr, np.zeros(998)]), 0.5)
    assert large[0] < small[0]


def test_the_model_interpolates_in_log_height_and_checks_its_table():
    model = EvidenceModel((16, 64), (0.2, 0.6), (0.0, 0.0), (0.1, 0.05))
    u, prec, _ = model.normalise(np.array([[0.2], [0.6], [0.4]]), np.array([16, 64, 32]))
    np.testing.assert_allclose(u[:2, 0], [1.0, 1.0])
    assert u[2, 0] == pytest.approx(1.0) and prec[0] < prec[2] < prec[1]
    with pytest.raises(ValueError, match="same_mean"):
        EvidenceModel((16, 64), (0.0, 0.6), (0.0, 0.0), (0.1, 0.05))
    with pytest.raises(ValueError, match="increasing"):
        EvidenceModel((64, 16), (0.2, 0.6), (0.0, 0.0), (0.1, 0.05))
    with pytest.raises(ValueError, match="naming_rule"):
        Identifier(GalleryIndex(["a"], orthonormal(1)[:1].astype(np.float32)), naming_rule="vote")


def test_the_evidence_only_grows_with_the_similarity():
    model = EvidenceModel((16, 64), (0.2, 0.6), (0.0, 0.0), (0.1, 0.05))
    track = TrackEvidence(np.linspace(-1.0, 3.0, 41) * 50.0, 50.0, 50.0 / 0.2 ** 2)
    llr = model.llr(track)
    assert np.all(np.diff(llr) >= 0)
