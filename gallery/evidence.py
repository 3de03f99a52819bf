"""How much a track's faces tell about who it is, whatever their size: the evidence rule of the identifier.

A 20 px face still carries identity, but weakly: its similarity to the right
person's template is only a little above the best wrong one's, so one
similarity threshold for every face size either names small faces wrongly or
never names them. The evidence model puts every frame on one scale first:

    u = (s - different_mean(h)) / (same_mean(h) - different_mean(h))

so that ``u`` is 1 on average for the right person and 0 for a wrong one at
every face height ``h``. Its noise depends on the height: a frame's ``u`` has
standard deviation ``frame_std(h) / (same_mean(h) - different_mean(h))``, large
for small faces. A track averages its frames' ``u`` per person, each frame
weighted by its precision (and by the detector-score ramp), so many weak
frames add up to what one good frame tells.

Frames of one face are not independent draws, though: an unenrolled person
who resembles an enrolled one does so in every frame. So the track's mean
``u_bar`` is compared with the *identity-level* spreads: the right person's
mean ``u`` varies across people and photos around 1 with ``same_spread`` (on
the ``u`` scale), a wrong person's similarity around ``different_mean`` with
``different_spread`` (on the cosine scale: how much two different people
resemble each other does not shrink with the face, so on the ``u`` scale it
grows as ``same_mean - different_mean`` shrinks; a track uses the
precision-weighted mean over its frames, ``d^2``). With ``v = 1 / total
precision`` the track's evidence for person ``p`` against "not ``p``" is::

    llr_p = log N(min(u_bar_p, 1); 1, same_spread^2 + v) - log N(max(u_bar_p, 0); 0, d^2 + v)

(one-sided, so that it only grows with ``u_bar``: a face more like ``p`` than
``p``'s faces usually are is no evidence against ``p``). It grows with the number and quality of frames but is bounded by how far
apart people are, so a persistent resemblance never accumulates into a name.
Open-set naming then weighs "the face is ``p``" for each of the ``P`` enrolled
people against "nobody enrolled" (prior ``unknown_prior``; ``(1 -
unknown_prior) / P`` each): a larger gallery gives a false match more chances
and lowers each person's prior, so it needs more evidence (:func:`posteriors`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from tracker.checks import check_number


@dataclass(frozen=True)
class EvidenceModel:
    """Similarity distributions by face height, and how far apart people are.

    Attributes
    ----------
    heights : tuple of float
        ``H`` increasing face heights in pixels where the distributions were measured.
    same_mean, different_mean : tuple of float
        ``H`` mean cosine similarities of one face of that height to the right
        person's template, and to a wrong person's.
    frame_std : tuple of float
        ``H`` standard deviations of one frame's similarity to the right person.
    same_spread : float
        Identity-level standard deviation of a track's mean ``u`` for the right person (around 1).
    different_spread : float
        Identity-level standard deviation of the cosine similarity between two
        different people (around ``different_mean``).
    """

    heights: Tuple[float, ...]
    same_mean: Tuple[float, ...]
    different_mean: Tuple[float, ...]
    frame_std: Tuple[float, ...]
    same_spread: float = 0.12
    different_spread: float = 0.07

    def __post_init__(self) -> None:
        columns = (self.heights, self.same_mean, self.different_mean, self.frame_std)
        sizes = {len(c) for c in columns}
        if len(sizes) != 1 or not sizes.pop():
            raise ValueError("evidence_heights, same_mean, different_mean and frame_std must have one length > 0")
        h = np.asarray(self.heights, float)
        if not (np.all(np.isfinite(h)) and np.all(h > 0) and np.all(np.diff(h) > 0)):
            raise ValueError(f"evidence_heights must be positive and increasing, got {self.heights}")
        if np.any(np.asarray(self.same_mean) - np.asarray(self.different_mean) <= 0):
            raise ValueError("same_mean must exceed different_mean at every height")
        if min(self.frame_std) <= 0:
            raise ValueError("frame_std must be > 0 at every height")
        check_number("same_spread", self.same_spread, 0, low_open=True)
        check_number("different_spread", self.different_spread, 0, low_open=True)

    def normalise(self, scores: np.ndarray, heights: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Frames on the common scale.

        Parameters
        ----------
        scores : ndarray
            ``(K, P)`` cosine similarities of ``K`` faces to ``P`` people.
        heights : ndarray
            ``(K,)`` face heights in pixels (interpolated linearly in ``log h``,
            held at the ends of the measured range).

        Returns
        -------
        (ndarray, ndarray, ndarray)
            ``(K, P)`` ``u``, ``(K,)`` precision ``1 / var(u)`` of each frame, and
            ``(K,)`` ``1 / (same_mean - different_mean)^2`` (the cosine-to-``u`` scale squared).
        """
        s = np.asarray(scores, float)
        s = s.reshape(len(s), -1)
        x = np.log(np.clip(np.asarray(heights, float).reshape(-1), 1.0, None))
        grid = np.log(np.asarray(self.heights, float))
        ms, md, sd = (np.interp(x, grid, np.asarray(c, float)) for c in
                      (self.same_mean, self.different_mean, self.frame_std))
        gap = ms - md
        return (s - md[:, None]) / gap[:, None], (gap / sd) ** 2, 1.0 / gap ** 2

    def llr(self, track: "TrackEvidence") -> np.ndarray:
        """``(P,)`` log-likelihood ratios of "the track is ``p``" against "it is not ``p``"."""
        u = track.mean_u()
        v = 1.0 / max(track.precision, 1e-12)
        vs = self.same_spread ** 2 + v
        vd = self.different_spread ** 2 * track.mean_inverse_gap2() + v
        # One-sided: a face more like p than p's faces usually are is no evidence against p, and one less like p
        # than strangers usually are is no evidence for p; so the ratio only grows with u.
        below = np.minimum(u - 1.0, 0.0)
        above = np.maximum(u, 0.0)
        return 0.5 * np.log(vd / vs) - 0.5 * below ** 2 / vs + 0.5 * above ** 2 / vd


@dataclass
class TrackEvidence:
    """A track's accumulated evidence: decayed precision-weighted sum of frame ``u`` per person, and total precision."""

    u_sum: Optional[np.ndarray] = None
    precision: float = 0.0
    inverse_gap2_sum: float = 0.0

    def add(self, u: np.ndarray, precision: float, inverse_gap2: float, decay: float = 1.0) -> None:
        """Add one frame (:meth:`EvidenceModel.normalise`) with its (already weighted) precision; older
        evidence decays."""
        self.u_sum = (0.0 if self.u_sum is None else decay * self.u_sum) + precision * np.asarray(u, float)
        self.precision = decay * self.precision + float(precision)
        self.inverse_gap2_sum = decay * self.inverse_gap2_sum + float(precision) * float(inverse_gap2)

    def mean_inverse_gap2(self) -> float:
        """Precision-weighted mean of the frames' ``1 / (same_mean - different_mean)^2``."""
        return self.inverse_gap2_sum / self.precision if self.precision > 0 else 0.0

    def mean_u(self) -> np.ndarray:
        """``(P,)`` precision-weighted mean ``u`` (zeros before any evidence)."""
        if self.u_sum is None or self.precision <= 0:
            return np.zeros(0 if self.u_sum is None else len(self.u_sum))
        return self.u_sum / self.precision


def posteriors(llr: np.ndarray, unknown_prior: float) -> Tuple[np.ndarray, float]:
    """Open-set posteriors of the ``P`` enrolled people and of "nobody enrolled".

    Parameters
    ----------
    llr : ndarray
        ``(P,)`` evidence of each person (:meth:`EvidenceModel.llr`).
    unknown_prior : float
        Prior probability that a face is nobody enrolled, in ``(0, 1)``.
    """
    e = np.asarray(llr, float).reshape(-1)
    if len(e) == 0:
        return np.zeros(0), 1.0
    logits = np.concatenate([[np.log(unknown_prior)], e + np.log1p(-unknown_prior) - np.log(len(e))])
    w = np.exp(logits - logits.max())
    w /= w.sum()
    return w[1:], float(w[0])
