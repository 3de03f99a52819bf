"""Association costs and gating for the tracker, as pure functions.

Each cost has the :data:`tracker.matching.CostFunction` shape once its
keywords are bound (``functools.partial``): ``cost(tracks, detections,
track_indices, detection_indices) -> (T, M)``. Everything a cost needs (the
metric, this frame's features, the filter, the limits) is an argument; no
cost reads the tracker's state.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tracker.boxes import iou_matrix
from tracker.detections import Detections
from tracker.kalman_filter import KalmanFilter
from tracker.matching import INFTY_COST, gating_mask, iou_cost
from tracker.track import Track


def appearance_cost(tracks: Sequence[Track], detections: Detections, track_indices: Sequence[int],
                    detection_indices: Sequence[int], *, metric, features: np.ndarray) -> np.ndarray:
    """Nearest-neighbour cosine distance of each track's stored features to each detection.

    Parameters
    ----------
    metric : NearestNeighborDistanceMetric
        Holds the tracks' features by ``track_id``.
    features : ndarray
        The frame's ``(N, D)`` embeddings, one row per detection.

    Returns
    -------
    ndarray
        A ``(T, M)`` matrix in ``[0, 2]``; ``inf`` for a track without stored features.
    """
    targets = [tracks[k].track_id for k in track_indices]
    return metric.distance(features[list(detection_indices)], targets)


def gated_appearance_cost(tracks: Sequence[Track], detections: Detections, track_indices: Sequence[int],
                          detection_indices: Sequence[int], *, metric, features: np.ndarray, kf: KalmanFilter,
                          only_position: bool = False, stale_max_distance: Optional[float] = None,
                          stale_min_confidence: float = 0.0) -> np.ndarray:
    """Appearance cost of the matching cascade, gated by motion.

    A track with a valid Kalman state is gated by the Mahalanobis distance
    (chi-square 0.95); a motion-stale track (after a shot cut) is not gated
    by motion. When ``stale_max_distance`` is given, a stale track matches
    only within it and only detections scoring at least
    ``stale_min_confidence``: it is matched by appearance alone, like a lost
    track (the tracker passes None on the cut frame itself).

    Returns
    -------
    ndarray
        A ``(T, M)`` matrix; impossible pairs are :data:`~tracker.matching.INFTY_COST`.
    """
    detection_indices = list(detection_indices)
    targets = [tracks[k].track_id for k in track_indices]
    feasible = np.ones((len(track_indices), len(detection_indices)), dtype=bool)
    rows = [r for r, k in enumerate(track_indices) if not tracks[k].motion_stale]
    if rows:
        feasible[rows] = gating_mask(kf, tracks, detections, [track_indices[r] for r in rows], detection_indices,
                                     only_position=only_position)
    matrix = metric.distance(features[detection_indices], targets, mask=feasible)
    matrix[~feasible] = INFTY_COST
    if stale_max_distance is not None:
        stale = [r for r, k in enumerate(track_indices) if tracks[k].motion_stale]
        sub = matrix[stale]
        sub[sub > stale_max_distance] = INFTY_COST
        sub[:, detections.confidence[detection_indices] < stale_min_confidence] = INFTY_COST
        matrix[stale] = sub
    return matrix


def vetoed_iou_cost(tracks: Sequence[Track], detections: Detections, track_indices: Sequence[int],
                    detection_indices: Sequence[int], *, metric, features: np.ndarray,
                    max_cosine_distance: float) -> np.ndarray:
    """``1 - IoU``, with pairs farther apart in appearance than ``max_cosine_distance`` made impossible.

    A track without stored features is not vetoed.
    """
    matrix = iou_cost(tracks, detections, track_indices, detection_indices)
    app = appearance_cost(tracks, detections, track_indices, detection_indices, metric=metric, features=features)
    matrix[np.isfinite(app) & (app > max_cosine_distance)] = INFTY_COST
    return matrix


def occluded(xyxy: np.ndarray, max_iou: float) -> np.ndarray:
    """``(N,)`` bool: the box overlaps another of the ``(N, 4)`` boxes by more than ``max_iou``.

    The crop of such a face blends two people, so the tracker matches with
    its embedding but does not store it as the track's appearance.
    """
    n = len(xyxy)
    if n < 2:
        return np.zeros(n, dtype=bool)
    iou = iou_matrix(xyxy, xyxy)
    np.fill_diagonal(iou, 0.0)
    return iou.max(axis=1) > max_iou
