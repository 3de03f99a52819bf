"""One frame's association of tracks and detections (DeepSORT's ``_match``), as a pure function.

1. Matching cascade: confirmed tracks (and every motion-stale track after a
   cut), most recently seen first, by cosine distance gated by motion.
2. IoU for tentative tracks and for tracks matched on the previous update.
3. A tentative track IoU could not follow (a fast face whose one-box state
   has no velocity yet) takes a confident detection by appearance alone.
4. Low-scoring detections (below ``low_score_threshold``: small or blurred
   faces the detector is unsure of), kept out of steps 1-3, continue the
   confirmed tracks matched on the previous update that are still unmatched,
   by IoU (ByteTrack's second association); they never start a track.

Without features every track with a valid Kalman state is matched by IoU
(steps 2 and 4).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tracker.costs import appearance_cost, gated_appearance_cost, vetoed_iou_cost
from tracker.detections import Detections
from tracker.kalman_filter import KalmanFilter
from tracker.matching import Matches, iou_cost, matching_cascade, min_cost_matching
from tracker.track import Track


@dataclass(frozen=True)
class AssociationLimits:
    """The thresholds of :func:`associate` (the tracker's keywords of the same names, checked there)."""

    max_cosine_distance: float
    reid_max_cosine_distance: float
    max_iou_distance: float
    max_age: int
    reid_min_confidence: float
    gating_only_position: bool = False
    appearance_veto: bool = False
    low_score_threshold: float = 0.0


def associate(tracks: Sequence[Track], detections: Detections, features: Optional[np.ndarray], *, metric,
              kf: KalmanFilter, limits: AssociationLimits, step: int = 1,
              cut: bool = False) -> Tuple[Matches, List[int], List[int]]:
    """Match ``tracks`` (already predicted) with ``detections``.

    Parameters
    ----------
    tracks, detections : sequence of Track, Detections
    features : ndarray or None
        The ``(N, D)`` embeddings of the detections, or None (motion only).
    metric, kf, limits : AppearanceMetric, KalmanFilter, AssociationLimits
    step : int
        Frames since the previous update (a track matched then has ``time_since_update <= step``).
    cut : bool
        This frame starts a new shot (motion-stale tracks are matched at
        ``max_cosine_distance``; after the cut frame at the re-id distance).

    Returns
    -------
    (list of (int, int), list of int, list of int)
        Matches ``(track index, detection index)``, unmatched track indices, and the unmatched detection
        indices that may start tracks (no low-scoring one).
    """
    low = detections.confidence < limits.low_score_threshold
    main, low_rows = np.flatnonzero(~low).tolist(), np.flatnonzero(low).tolist()
    if features is None:
        fresh = [i for i, t in enumerate(tracks) if not t.motion_stale]
        matches, _, unmatched_dets = min_cost_matching(iou_cost, limits.max_iou_distance, tracks, detections,
                                                       fresh, main)
    else:
        matches, unmatched_dets = _associate_main(tracks, detections, features, main, metric, kf, limits, step,
                                                  cut)
    matches += _associate_low_score(tracks, detections, low_rows, matches, limits.max_iou_distance, step)
    return matches, _unmatched(tracks, matches), unmatched_dets


def _associate_main(tracks, detections, features, main, metric, kf, limits, step, cut):
    """Steps 1-3 over the detection rows ``main``: ``(matches, unmatched detection rows)``."""
    # Step 1: the cascade.
    cascade_cost = functools.partial(
        gated_appearance_cost, metric=metric, features=features, kf=kf, only_position=limits.gating_only_position,
        stale_max_distance=None if cut else limits.reid_max_cosine_distance,
        stale_min_confidence=limits.reid_min_confidence)
    cascade_tracks = [i for i, t in enumerate(tracks) if t.is_confirmed() or t.motion_stale]
    matches_a, unmatched_a, unmatched_dets = matching_cascade(
        cascade_cost, limits.max_cosine_distance, limits.max_age, tracks, detections, cascade_tracks, main)

    # Step 2: IoU for tentative tracks and tracks matched on the previous update.
    candidates = [i for i, t in enumerate(tracks) if not t.motion_stale
                  and (t.is_tentative() or (i in unmatched_a and t.time_since_update <= step))]
    box_cost = (functools.partial(vetoed_iou_cost, metric=metric, features=features,
                                  max_cosine_distance=limits.max_cosine_distance)
                if limits.appearance_veto else iou_cost)
    matches_b, _, unmatched_dets = min_cost_matching(
        box_cost, limits.max_iou_distance, tracks, detections, candidates, unmatched_dets)

    # Step 3: fast tentative tracks by appearance alone, at the re-id distance.
    matched_b = {k for k, _ in matches_b}
    tentative = [i for i in candidates if tracks[i].is_tentative() and i not in matched_b]
    confident = [d for d in unmatched_dets if detections.confidence[d] >= limits.reid_min_confidence]
    matches_c = []
    if tentative and confident:
        matches_c, _, left = min_cost_matching(
            functools.partial(appearance_cost, metric=metric, features=features),
            limits.reid_max_cosine_distance, tracks, detections, tentative, confident)
        unmatched_dets = [d for d in unmatched_dets if d not in confident] + left
    return matches_a + matches_b + matches_c, unmatched_dets


def _associate_low_score(tracks, detections, low_rows, matches, max_iou_distance: float, step: int) -> Matches:
    """Step 4: low-scoring rows continue unmatched confirmed tracks matched on the previous update, by IoU."""
    matched = {k for k, _ in matches}
    candidates = [i for i, t in enumerate(tracks) if i not in matched and t.is_confirmed()
                  and not t.motion_stale and t.time_since_update <= step]
    return min_cost_matching(iou_cost, max_iou_distance, tracks, detections, candidates, low_rows)[0]


def _unmatched(tracks: Sequence[Track], matches: Matches) -> List[int]:
    matched = {k for k, _ in matches}
    return [i for i in range(len(tracks)) if i not in matched]
