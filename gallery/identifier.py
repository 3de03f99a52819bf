"""Naming tracks from the evidence gathered over their life.

The rule from the project's origin: a track is named when it is *matched* to
a detection, with evidence gathered over its life, never at its creation. A
single comparison of one face crop against the gallery is noisy (an earlier
attempt saw every similarity near 0.3); the running mean of many embeddings
of the same face is far more stable, so a name is given only when

1. the track is confirmed and was matched this frame (``time_since_update
   == 0``). Evidence is every embedding of a detection the track was
   matched to, tentative frames included (so a name can be given on the
   hit that confirms the track, from the faces that led to it), weighted
   by the face quality (``FaceQuality.score``: size, blur, frontalness from
   the landmarks), at least ``min_weight``, and skipped below
   ``min_quality``;
2. at least ``min_observations`` pieces of evidence were gathered;
3. the cosine similarity of the track's (quality-weighted) mean embedding to
   the best person is at least the threshold and beats the runner-up by
   ``min_margin``. The threshold is ``similarity_threshold``, or with
   ``size_aware_threshold`` one that follows the track's face height down to
   a floor set by the gallery's size (:mod:`gallery.size_threshold`).

Names are sticky (hysteresis): a named track keeps its name while its score
stays above ``similarity_threshold - hysteresis`` and no other person beats it
by ``min_margin`` with a score above ``similarity_threshold``. When the
evidence turns (old evidence fades with ``evidence_half_life``), the name is
withdrawn or switched. Tracks the tracker deleted are forgotten with
:meth:`Identifier.forget`; a track revived from the lost buffer keeps its
evidence and its name.

Low-quality, occluded and profile faces
---------------------------------------
A good face outweighs poor ones through the quality weight, so a track seen
both frontally and in profile is named from its frontal frames. Poor faces
are not thrown away by default (``min_quality = 0``): the quality score
multiplies size, sharpness and frontalness, so a three-quarter face gets 0
although its embedding still carries identity (the measurement behind
this: ``docs/tuning.md``). Raise ``min_quality`` for embedders that break
down on profiles.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Iterable, Optional, Sequence

import numpy as np

from gallery.index import GalleryIndex
from gallery.evidence import EvidenceModel, TrackEvidence
from gallery.naming_rules import RULES, EvidenceRule, MeanSimilarityRule, margin_of
from gallery.identity import UNKNOWN, Identity
from gallery.size_threshold import SizeAwareThreshold
from gallery.unknown_index import UnknownIndex
from tracker.checks import check_bool, check_choice, check_int, check_number
from tracker.vectors import l2_normalize

logger = logging.getLogger(__name__)


@dataclass
class _TrackEvidence:
    weighted_sum: np.ndarray                 # (D,) decayed, quality-weighted sum of embeddings
    height_sum: float = 0.0                  # the same sums of face heights (px)...
    weight_sum: float = 0.0                  # ...and of the weights: the track's face height is their ratio
    observations: int = 0
    identity: Identity = field(default=UNKNOWN)
    confirmed: bool = False                  # seen confirmed (or held) at least once: may be named
    evidence: TrackEvidence = field(default_factory=TrackEvidence)   # the evidence rule's sums

    def mean(self) -> np.ndarray:
        return l2_normalize(self.weighted_sum)

    def height(self) -> float:
        return self.height_sum / self.weight_sum if self.weight_sum > 0 else float("nan")


class Identifier:
    """Names tracks from their accumulated evidence against a gallery.

    Parameters
    ----------
    index : GalleryIndex
        The enrolled people.
    similarity_threshold : float
        Cosine similarity (not a distance) a track's mean embedding needs to
        the best person before it is named. Calibrate it with
        ``python -m gallery calibrate``.
    min_margin : float
        How much the best person must beat the runner-up (cosine similarity).
    min_observations : int
        Evidence frames needed before any name is given (>= 1).
    min_quality : float
        Detections with a face-quality score below this add no evidence
        (0 keeps all; see the note on profile faces below).
    min_weight : float
        The weight of a piece of evidence is ``max(quality, min_weight)``, so
        a face whose quality score is 0 (a profile: frontalness 0) still
        counts a little.
    hysteresis : float
        A named track keeps its name down to ``similarity_threshold - hysteresis``.
    evidence_half_life : float
        After this many new observations, older evidence counts half, so the
        name can turn when the track's face changes. ``0`` keeps all evidence
        with equal weight.
    min_confidence, full_confidence : float
        The weight is also multiplied by the detector score ramped from 0 at
        ``min_confidence`` to 1 at ``full_confidence`` (the product still
        floored at ``min_weight``); ``full_confidence <= min_confidence``
        turns the ramp off. Face quality (size, blur, pose) says nothing of
        a face half out of the frame or half hidden, and the detector score
        does.
    max_ended_unknowns : int
        Mean embeddings of ended tracks that stayed Unknown kept in memory
        for :meth:`unknown_embeddings` (the newest ones; 0 keeps none). They
        are never written anywhere.
    naming_rule : {"mean", "evidence"}
        ``"mean"``: ``similarity_threshold``, ``min_margin`` and ``hysteresis``
        on the mean embedding; ``"evidence"``: the open-set posterior of
        :mod:`gallery.evidence`, which weighs each face by how informative its
        size makes it (:mod:`gallery.naming_rules`).
    evidence_heights, same_mean, different_mean, frame_std : sequence of float
        The evidence rule's similarity distributions by face height (see
        :class:`gallery.evidence.EvidenceModel`); measure them with
        ``python -m gallery calibrate --heights``.
    same_spread, different_spread : float
        Identity-level spreads of the evidence rule.
    size_aware_threshold : bool
        Mean rule: a track's threshold follows its face height and the
        gallery's size (:mod:`gallery.size_threshold`, from the table above,
        ``different_spread`` and ``stranger_match_rate``), never above
        ``similarity_threshold`` unless the gallery is large; False:
        ``similarity_threshold`` for every track.
    stranger_match_rate : float
        With ``size_aware_threshold``: the chance, in ``(0, 1)``, that a
        stranger's track reaches the threshold's floor in a gallery of any size.
    unknown_prior : float
        Prior probability that a face is nobody enrolled, in ``(0, 1)``.
    min_posterior, keep_posterior : float
        The evidence rule names a track at ``min_posterior`` and keeps the name
        down to ``keep_posterior``.
    corroboration_seconds : float
        Mean rule: a new name scoring below ``similarity_threshold`` needs a sighting
        of that person at or above it within this many seconds before; ``0``: off.
    unknowns : UnknownIndex or None
        The persistent Unknowns (:mod:`gallery.unknowns`): an Unknown track
        whose mean matches a cluster gets its ``unknown_id``, and a track is
        not named X when its mean is close to a negative example of X.
    """

    def __init__(
        self,
        index: GalleryIndex,
        *,
        similarity_threshold: float = 0.35,
        min_margin: float = 0.08,
        min_observations: int = 3,
        min_quality: float = 0.0,
        min_weight: float = 0.05,
        hysteresis: float = 0.05,
        evidence_half_life: float = 50.0,
        min_confidence: float = 0.7,
        full_confidence: float = 0.85,
        max_ended_unknowns: int = 1000,
        naming_rule: str = "mean",
        evidence_heights: Sequence[float] = (16, 24, 32, 48, 64, 112),
        same_mean: Sequence[float] = (0.076, 0.199, 0.363, 0.532, 0.633, 0.745),
        different_mean: Sequence[float] = (-0.008, -0.005, 0.005, 0.008, 0.011, 0.010),
        frame_std: Sequence[float] = (0.097, 0.103, 0.104, 0.097, 0.085, 0.073),
        same_spread: float = 0.12,
        different_spread: float = 0.078,
        unknown_prior: float = 0.5,
        min_posterior: float = 0.99,
        keep_posterior: float = 0.5,
        size_aware_threshold: bool = True,
        stranger_match_rate: float = 0.001,
        corroboration_seconds: float = 0.0,
        unknowns: Optional[UnknownIndex] = None,
    ) -> None:
        if not isinstance(index, GalleryIndex):
            raise ValueError(f"index must be a GalleryIndex, got {type(index).__name__}")
        if unknowns is not None and not isinstance(unknowns, UnknownIndex):
            raise ValueError(f"unknowns must be an UnknownIndex or None, got {type(unknowns).__name__}")
        self.unknowns = unknowns
        self.index = index
        self.naming_rule = check_choice("naming_rule", naming_rule, RULES)
        self.similarity_threshold = check_number("similarity_threshold", similarity_threshold, -1, 1)
        self.min_observations = check_int("min_observations", min_observations, 1)
        by_size = SizeAwareThreshold(tuple(evidence_heights), tuple(same_mean), tuple(frame_std), different_spread,
                                     stranger_match_rate, similarity_threshold) if check_bool(
            "size_aware_threshold", size_aware_threshold) else None
        mean_rule = MeanSimilarityRule(similarity_threshold, min_margin, hysteresis, min_observations, by_size)
        self.min_margin, self.hysteresis = mean_rule.min_margin, mean_rule.hysteresis
        #: The similarity distributions by face height (the evidence rule's, and the Unknowns' join check).
        self.evidence_model = EvidenceModel(tuple(evidence_heights), tuple(same_mean), tuple(different_mean),
                                            tuple(frame_std), same_spread, different_spread)
        self.rule = mean_rule if naming_rule == "mean" else EvidenceRule(
            self.evidence_model, unknown_prior, min_posterior, keep_posterior, min_observations)
        self.min_quality = check_number("min_quality", min_quality, 0, 1)
        self.min_weight = check_number("min_weight", min_weight, 0, 1, low_open=True)
        self.evidence_half_life = check_number("evidence_half_life", evidence_half_life, 0)
        self.min_confidence = check_number("min_confidence", min_confidence, 0, 1)
        self.full_confidence = check_number("full_confidence", full_confidence, 0, 1)
        self._decay = 0.5 ** (1.0 / evidence_half_life) if evidence_half_life > 0 else 1.0
        self.max_ended_unknowns = check_int("max_ended_unknowns", max_ended_unknowns, 0)
        self.corroboration_seconds = check_number("corroboration_seconds", corroboration_seconds, 0)
        self._confident_at: dict[str, float] = {}    # person -> time of their last confident naming
        self._now = 0.0
        self._tracks: dict[int, _TrackEvidence] = {}
        self._ended_unknowns: deque = deque(maxlen=self.max_ended_unknowns)

    # -- per frame -------------------------------------------------------------
    def update(self, tracks: Sequence, detections, quality: Optional[np.ndarray] = None, *,
               timestamp: Optional[float] = None) -> None:
        """Add this frame's evidence and re-decide the names of the tracks that got some.

        Parameters
        ----------
        tracks : sequence of Track
            The tracker's output for this frame (objects with ``track_id``,
            ``is_confirmed()``, ``time_since_update`` and ``det_index``).
            Every track matched this frame gets evidence, tentative ones
            included; only confirmed and held ones (``track.held``: confirmed
            by their hits, kept hidden while they may still be a lost track)
            are named, so that the pipeline can give a held track the id of
            the lost track the gallery names alike. A tentative track is
            named on the update that confirms it at the earliest.
        detections : Detections
            The frame's detections with ``embedding`` ``(N, D)``; a track's
            ``det_index`` selects its row.
        quality : ndarray, optional
            ``(N,)`` face-quality scores in ``[0, 1]`` (``FaceQuality.score``),
            aligned with the rows of ``detections``; without it every piece
            of evidence has weight 1.
        timestamp : float, optional
            The frame's time in seconds (``corroboration_seconds``); None keeps the clock still.
        """
        if timestamp is not None:
            self._now = float(timestamp)
        rows_of = {int(d): r for r, d in enumerate(detections.det_index)}
        q = None
        if quality is not None:
            q = np.asarray(getattr(quality, "score", quality), dtype=np.float64).reshape(-1)
            if q.shape != (len(detections),):
                raise ValueError(f"quality must have shape ({len(detections)},), got {q.shape}")

        updated: list[int] = []
        evidence_rows: list = []
        for track in tracks:
            if track.time_since_update != 0 or track.det_index is None:
                continue
            row = rows_of.get(int(track.det_index))
            if row is None:
                raise ValueError(
                    f"track {track.track_id} points at det_index {track.det_index}, which is not in the detections"
                )
            if detections.embedding is None:
                raise ValueError("detections have no embeddings; run the embedder before the identifier")
            added, may_name = self._add_evidence(track, detections, row, 1.0 if q is None else float(q[row]))
            if added:
                evidence_rows.append((int(track.track_id), row))
            if may_name:
                updated.append(int(track.track_id))
        if evidence_rows and isinstance(self.rule, EvidenceRule):
            self._add_frame_evidence(evidence_rows, detections)
        if updated:
            self._decide(updated)

    def _add_frame_evidence(self, rows: list, detections) -> None:
        """Evidence rule: each frame's ``u`` and precision, weighted by the detector-score ramp."""
        idx = np.asarray([r for _, r in rows])
        u, precision, inverse_gap2 = self.rule.model.normalise(self.index.person_scores(detections.embedding[idx]),
                                                               detections.height[idx])
        for k, (tid, row) in enumerate(rows):
            w = self._weight(1.0, float(detections.confidence[row])) * precision[k]
            self._tracks[tid].evidence.add(u[k], w, inverse_gap2[k], self._decay)

    def _add_evidence(self, track, detections, row: int, quality_score: float) -> tuple:
        """Add detection ``row`` to ``track``'s evidence; (added, the track may be named now)."""
        tid = int(track.track_id)
        ev = self._tracks.get(tid)
        if ev is None:
            ev = self._tracks[tid] = _TrackEvidence(np.zeros(detections.embedding.shape[1], np.float64))
        if not np.isfinite(quality_score) or quality_score < self.min_quality:
            return False, False
        w = self._weight(quality_score, float(detections.confidence[row]))
        emb = detections.embedding[row].astype(np.float64)
        ev.weighted_sum = self._decay * ev.weighted_sum + w * l2_normalize(emb)
        ev.height_sum = self._decay * ev.height_sum + w * float(detections.xyxy[row, 3] - detections.xyxy[row, 1])
        ev.weight_sum = self._decay * ev.weight_sum + w
        ev.observations += 1
        if track.is_confirmed() or getattr(track, "held", False):   # held: confirmed but not shown yet
            ev.confirmed = True
            return True, True
        ev.identity = Identity(None, 0.0, 0.0, ev.observations)    # tentative: evidence, no name yet
        return True, False

    def _weight(self, quality_score: float, confidence: float) -> float:
        """Evidence weight: quality times the detector-score ramp, at least ``min_weight``."""
        if self.full_confidence > self.min_confidence:
            ramp = (confidence - self.min_confidence) / (self.full_confidence - self.min_confidence)
            quality_score *= min(max(ramp, 0.0), 1.0)
        return max(quality_score, self.min_weight)

    def _decide(self, track_ids: list[int]) -> None:
        means = np.stack([self._tracks[t].mean() for t in track_ids]).astype(np.float32)
        scores = self.index.person_scores(means)            # (K, P), one matrix product
        people = self.index.people
        for k, tid in enumerate(track_ids):
            ev = self._tracks[tid]
            ev.identity = self._with_unknowns(self._decide_one(scores[k], people, ev), means[k])

    def _decide_one(self, scores: np.ndarray, people: list, ev: _TrackEvidence) -> Identity:
        n = ev.observations
        if len(people) == 0:
            return Identity(None, 0.0, 0.0, n)
        d = self.rule.decide(scores, people, ev.identity.name, n, evidence=ev.evidence, height=ev.height())
        if d.name is not None and d.confident:
            self._confident_at[d.name] = self._now
        elif d.name is not None and d.name != ev.identity.name and not self._corroborated(d.name):
            d = replace(d, name=None)
        return Identity(d.name, float(scores[d.person]), margin_of(scores, d.person), n, d.posterior)

    def _corroborated(self, name: str) -> bool:
        """A confident sighting of ``name`` within the window (True when the check is off)."""
        seen = self._confident_at.get(name)
        return self.corroboration_seconds <= 0 or (seen is not None and self._now - seen <= self.corroboration_seconds)

    def _with_unknowns(self, identity: Identity, mean: np.ndarray) -> Identity:
        """No name close to a negative example of it; an Unknown with enough evidence gets its cluster's id."""
        if self.unknowns is None:
            return identity
        if identity.name is not None and self.unknowns.vetoes(identity.name, mean, identity.score):
            identity = replace(identity, name=None)
        if identity.name is None and identity.observations >= self.min_observations:
            cluster, similarity = self.unknowns.match(mean)
            if cluster is not None:
                identity = replace(identity, unknown_id=cluster, score=similarity)
        return identity

    # -- lifetime of tracks ---------------------------------------------------
    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the evidence of tracks the tracker ended; an Unknown one's mean embedding is
        kept (up to ``max_ended_unknowns``) for :meth:`unknown_embeddings`."""
        for tid in track_ids:
            ev = self._tracks.pop(int(tid), None)
            if ev is not None and self.max_ended_unknowns and self._is_unknown(ev, self.min_observations):
                self._ended_unknowns.append((int(tid), ev.mean()))

    def reset(self) -> None:
        """Forget every track, the ended Unknown ones and the confident sightings."""
        self._tracks.clear()
        self._confident_at.clear()
        self._ended_unknowns.clear()

    # -- reading ----------------------------------------------------------------
    def get(self, track_id: int) -> Identity:
        """The identity of a track (Unknown with 0 observations when never seen)."""
        ev = self._tracks.get(int(track_id))
        return UNKNOWN if ev is None else ev.identity

    def identities(self) -> dict[int, Identity]:
        """Identity of every confirmed (or held) track with evidence, by track id."""
        return {tid: ev.identity for tid, ev in self._tracks.items() if ev.confirmed}

    def track_embedding(self, track_id: int) -> Optional[np.ndarray]:
        """The ``(D,)`` quality-weighted mean embedding of a track, or ``None`` without evidence."""
        ev = self._tracks.get(int(track_id))
        if ev is None or ev.observations == 0:
            return None
        return ev.mean().astype(np.float32)

    def unknown_embeddings(self, min_observations: Optional[int] = None, *,
                           include_ended: bool = False) -> tuple[list[int], np.ndarray]:
        """Mean embeddings of tracks that are still Unknown, for :mod:`gallery.cluster`.

        With ``include_ended``, the ended Unknown tracks kept by :meth:`forget` come first
        (their own ``min_observations`` check was the identifier's).

        Returns
        -------
        track_ids : list of int
            ``K`` ids of confirmed tracks with at least ``min_observations``
            (default: the identifier's own) pieces of evidence and no name.
        embeddings : ndarray
            A ``(K, D)`` float32 matrix of their mean embeddings.
        """
        need = self.min_observations if min_observations is None else int(min_observations)
        rows = [(tid, ev.mean()) for tid, ev in self._tracks.items() if self._is_unknown(ev, need)]
        if include_ended:
            rows = list(self._ended_unknowns) + rows
        if not rows:
            return [], np.zeros((0, self.index.dim), np.float32)
        return [t for t, _ in rows], np.stack([v for _, v in rows]).astype(np.float32)

    @staticmethod
    def _is_unknown(ev: "_TrackEvidence", min_observations: int) -> bool:
        return ev.confirmed and ev.identity.name is None and ev.observations >= max(min_observations, 1)
