"""Re-identification by appearance alone: which new track or detection is which absent track.

An *absent* track is one a returning face may be: a track in the lost
buffer, or a confirmed track not matched on this update. These functions
only decide pairs, through the one matcher of :mod:`tracker.matching`; the
tracker applies them with the track methods (``continue_as``, ``revive``).
"""
from __future__ import annotations

import functools
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from tracker.costs import appearance_cost
from tracker.detections import Detections
from tracker.matching import Matches, min_cost_matching
from tracker.track import Track

#: ``(held tracks matched this update, absent tracks) -> (held id, absent id or None) pairs``: outside
#: evidence that a held track is an absent one (the gallery names both alike), or, with ``None``, that
#: it is none of them (the gallery names it somebody no absent track is named).
HeldLinker = Callable[[Sequence[Track], Sequence[Track]], Sequence[Tuple[int, Optional[int]]]]


def confident_features(track: Track, min_confidence: float) -> List[np.ndarray]:
    """The track's pending features if its last detection scored at least ``min_confidence``."""
    confidence = track.confidence if track.confidence is not None else 1.0
    return list(track.pending_features) if confidence >= min_confidence else []


def young_track_pairs(features: Sequence[Sequence[np.ndarray]], candidates: Sequence[Track], metric,
                      max_distance: float) -> List[Tuple[int, int]]:
    """Pair young tracks with the absent tracks they are.

    Parameters
    ----------
    features : sequence of sequence of ndarray
        For each of ``Y`` young tracks, its ``(D,)`` features (at least one each).
    candidates : sequence of Track
        ``C`` absent tracks.
    metric : NearestNeighborDistanceMetric
    max_distance : float
        Largest cosine distance of a pair: a young track's nearest feature
        to the candidate's nearest stored feature.

    Returns
    -------
    list of (int, int)
        ``(young index, candidate index)`` pairs, one-to-one (Hungarian).
    """
    if not features or not candidates:
        return []
    counts = [len(f) for f in features]
    pairwise = metric.distance(np.concatenate([np.stack(f) for f in features]), [t.track_id for t in candidates])
    cost = np.minimum.reduceat(pairwise, np.cumsum([0] + counts[:-1]), axis=1)  # (C, Y)

    def precomputed(_tracks, _young, rows, cols):
        return cost[np.ix_(list(rows), list(cols))]

    matches, _, _ = min_cost_matching(precomputed, max_distance, candidates, list(range(len(features))))
    return [(young, cand) for cand, young in matches]


def detection_pairs(candidates: Sequence[Track], detections: Detections, detection_indices: Sequence[int],
                    metric, features: np.ndarray, max_distance: float) -> Tuple[Matches, List[int]]:
    """Pair leftover detections with absent tracks by appearance alone.

    Returns
    -------
    (list of (int, int), list of int)
        ``(candidate index, detection index)`` matches and the detections left over.
    """
    cost = functools.partial(appearance_cost, metric=metric, features=features)
    matches, _, left = min_cost_matching(cost, max_distance, candidates, detections, None, detection_indices)
    return matches, left


def undecided(features: Sequence[np.ndarray], target_ids: Sequence[int], metric, hold_distance: float) -> bool:
    """A new track may still be one of ``target_ids``: no feature to compare, or one within ``hold_distance``."""
    if not features:
        return True
    return float(metric.distance(np.stack(features), list(target_ids)).min()) <= hold_distance


def valid_links(proposals: Sequence[Tuple[int, Optional[int]]], held: Sequence[Track],
                absent: Sequence[Track]) -> Tuple[List[Tuple[Track, Track]], List[Track]]:
    """The proposals that can be applied, each track used once.

    Returns
    -------
    (list of (Track, Track), list of Track)
        ``(held, absent)`` pairs (the held track goes on as the absent one),
        and the held tracks proposed with ``None`` (to be released: shown as
        new faces). Ids that name no held track or no absent track are ignored.
    """
    held_by_id = {t.track_id: t for t in held}
    absent_by_id = {t.track_id: t for t in absent}
    links, released = [], []
    for held_id, absent_id in proposals:
        track = held_by_id.get(int(held_id))
        old = None if absent_id is None else absent_by_id.get(int(absent_id))
        if track is None or (old is None and absent_id is not None):
            continue
        held_by_id.pop(int(held_id))
        if old is None:
            released.append(track)
        else:
            absent_by_id.pop(int(absent_id))
            links.append((track, old))
    return links, released
