"""Assignment of detections to tracks: min-cost matching, the matching
cascade, Mahalanobis gating and the IoU cost (deep_sort's
``linear_assignment.py`` and ``iou_matching.py``).

A cost function has the signature
``cost(tracks, detections, track_indices, detection_indices) -> ndarray``
and returns a ``(len(track_indices), len(detection_indices))`` matrix.
``detections`` is a :class:`~tracker.detections.Detections`; indices are rows
of it (positions, not ``det_index`` values). Matches are
``(track_index, detection_index)`` pairs.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.boxes import iou_matrix, xyxy_to_xyah
from tracker.detections import Detections
from tracker.kalman_filter import CHI2INV95, KalmanFilter
from tracker.track import Track

#: Cost given to gated-out (impossible) pairs.
INFTY_COST = 1e5

Matches = List[Tuple[int, int]]
CostFunction = Callable[[Sequence[Track], Detections, List[int], List[int]], np.ndarray]


def _rows(indices: Optional[Sequence[int]], count: int) -> List[int]:
    """The given row indices as a list, or every row of ``count`` when None."""
    return list(range(count)) if indices is None else list(indices)


def min_cost_matching(
    distance_metric: CostFunction,
    max_distance: float,
    tracks: Sequence[Track],
    detections: Detections,
    track_indices: Optional[Sequence[int]] = None,
    detection_indices: Optional[Sequence[int]] = None,
) -> Tuple[Matches, List[int], List[int]]:
    """Solve the linear assignment problem (Hungarian, via scipy).

    Parameters
    ----------
    distance_metric : callable
        ``(tracks, detections, track_indices, detection_indices) -> (T, M)``
        cost matrix.
    max_distance : float
        Pairs with a larger cost are never matched.
    tracks : sequence of Track
    detections : Detections
    track_indices : sequence of int or None
        Rows of ``tracks`` to match (default: all).
    detection_indices : sequence of int or None
        Rows of ``detections`` to match (default: all).

    Returns
    -------
    (list of (int, int), list of int, list of int)
        Matches ``(track_index, detection_index)``, unmatched track indices
        and unmatched detection indices.
    """
    track_indices = _rows(track_indices, len(tracks))
    detection_indices = _rows(detection_indices, len(detections))
    if not track_indices or not detection_indices:
        return [], track_indices, detection_indices

    cost = np.array(distance_metric(tracks, detections, track_indices, detection_indices), dtype=np.float64)
    cost[~np.isfinite(cost) | (cost > max_distance)] = max_distance + 1e-5
    rows, cols = linear_sum_assignment(cost)

    matches: Matches = []
    matched_rows, matched_cols = set(), set()
    for r, c in zip(rows, cols):
        if cost[r, c] > max_distance:
            continue
        matches.append((track_indices[r], detection_indices[c]))
        matched_rows.add(r)
        matched_cols.add(c)
    unmatched_tracks = [t for i, t in enumerate(track_indices) if i not in matched_rows]
    unmatched_detections = [d for j, d in enumerate(detection_indices) if j not in matched_cols]
    return matches, unmatched_tracks, unmatched_detections


def matching_cascade(
    distance_metric: CostFunction,
    max_distance: float,
    cascade_depth: int,
    tracks: Sequence[Track],
    detections: Detections,
    track_indices: Optional[Sequence[int]] = None,
    detection_indices: Optional[Sequence[int]] = None,
) -> Tuple[Matches, List[int], List[int]]:
    """Match tracks level by level, most recently updated first.

    Level ``k`` holds the tracks with ``time_since_update == k`` (after the
    prediction step, ``k = 1`` is a track matched in the previous frame).
    Each level is matched by :func:`min_cost_matching` against the
    detections left over by the levels before it, so a recently seen track
    wins a detection over one that has been missing longer. Levels without
    tracks are skipped; tracks deeper than ``cascade_depth`` are not matched.

    Parameters
    ----------
    distance_metric : callable
        Cost function (see the module docstring).
    max_distance : float
        Pairs with a larger cost are never matched.
    cascade_depth : int
        Deepest level matched (the tracker uses ``max_age``).
    tracks : sequence of Track
    detections : Detections
    track_indices : sequence of int or None
        Rows of ``tracks`` to match (default: all).
    detection_indices : sequence of int or None
        Rows of ``detections`` to match (default: all).

    Returns
    -------
    (list of (int, int), list of int, list of int)
        Matches, unmatched track indices and unmatched detection indices.
    """
    track_indices = _rows(track_indices, len(tracks))
    unmatched_detections = _rows(detection_indices, len(detections))
    matches: Matches = []
    levels = sorted({tracks[k].time_since_update for k in track_indices})
    for level in levels:
        if not unmatched_detections:
            break
        if level < 1 or level > cascade_depth:
            continue
        level_indices = [k for k in track_indices if tracks[k].time_since_update == level]
        matches_l, _, unmatched_detections = min_cost_matching(
            distance_metric, max_distance, tracks, detections, level_indices, unmatched_detections
        )
        matches += matches_l
    matched = {k for k, _ in matches}
    unmatched_tracks = [k for k in track_indices if k not in matched]
    return matches, unmatched_tracks, unmatched_detections


def gating_mask(
    kf: KalmanFilter,
    tracks: Sequence[Track],
    detections: Detections,
    track_indices: Sequence[int],
    detection_indices: Sequence[int],
    only_position: bool = False,
) -> np.ndarray:
    """Which pairs pass the Mahalanobis gate (chi-square 0.95 quantile).

    Returns
    -------
    ndarray
        A ``(T, M)`` boolean matrix, True where the detection is plausible
        for the track's Kalman state.
    """
    if len(track_indices) == 0 or len(detection_indices) == 0:
        return np.zeros((len(track_indices), len(detection_indices)), dtype=bool)
    threshold = CHI2INV95[2 if only_position else 4]
    measurements = xyxy_to_xyah(detections.xyxy[list(detection_indices)])
    means = np.stack([tracks[k].mean for k in track_indices])
    covariances = np.stack([tracks[k].covariance for k in track_indices])
    distance = kf.multi_gating_distance(means, covariances, measurements, only_position)
    return distance <= threshold


def iou_cost(
    tracks: Sequence[Track],
    detections: Detections,
    track_indices: Optional[Sequence[int]] = None,
    detection_indices: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """``1 - IoU`` between the tracks' predicted boxes and the detections.

    Returns
    -------
    ndarray
        A ``(T, M)`` cost matrix in ``[0, 1]``.
    """
    track_indices = _rows(track_indices, len(tracks))
    detection_indices = _rows(detection_indices, len(detections))
    if not track_indices or not detection_indices:
        return np.zeros((len(track_indices), len(detection_indices)))
    boxes = np.stack([tracks[k].to_xyxy() for k in track_indices])
    return 1.0 - iou_matrix(boxes, detections.xyxy[detection_indices])
