"""One tracked face: its Kalman state, lifecycle and the detection it matched.

A track owns its state; the tracker lends it the Kalman filter
(``track.predict(kf)``, ``track.update(kf, ...)``, ``track.mark_missed()``),
as in deep_sort. Appearance features live in the appearance metric, keyed by
``track_id``; a track only queues the features it received this frame in
``pending_features`` for the tracker to hand over.
"""
from __future__ import annotations

import enum
from typing import List, Optional, Sequence

import numpy as np

from tracker.boxes import xyah_to_xyxy
from tracker.kalman_filter import KalmanFilter


class TrackState(enum.Enum):
    """Lifecycle of a track.

    ``TENTATIVE`` until ``n_init`` consecutive hits, then ``CONFIRMED``. A
    tentative track is ``DELETED`` on its first miss; a confirmed one after
    more than ``max_age`` consecutive misses, when it becomes ``LOST`` if the
    tracker keeps a lost-track buffer for re-identification (and ``DELETED``
    when it leaves that buffer).
    """

    TENTATIVE = 1
    CONFIRMED = 2
    DELETED = 3
    LOST = 4


class Track:
    """A single face track with an ``xyah`` Kalman state.

    Parameters
    ----------
    mean : ndarray
        The ``(8,)`` initial state mean.
    covariance : ndarray
        The ``(8, 8)`` initial state covariance.
    track_id : int
        A unique id for this track.
    n_init : int
        Consecutive hits needed to confirm the track (1 confirms at once).
    max_age : int
        Consecutive misses tolerated before a confirmed track is deleted.
    det_index : int or None
        The ``det_index`` of the detection that started the track.
    feature : ndarray or None
        The ``(D,)`` appearance feature of that detection, if any.

    Attributes
    ----------
    track_id : int
    state : TrackState
    hits : int
        Number of measurement updates.
    age : int
        Frames since the track started.
    time_since_update : int
        Frames since the last measurement update (0 = matched this frame).
    det_index : int or None
        ``det_index`` of the detection matched this frame, else ``None``.
    revived : bool
        True on the frame the track came back from the lost buffer.
    held : bool
        True while the tracker keeps the track tentative after ``n_init``
        hits because it may still be a lost track (see the tracker's
        ``hold_cosine_distance``).
    motion_stale : bool
        True after a scene cut until the track is matched again: its Kalman
        state describes the previous shot, so it is matched by appearance
        only and re-initialised from the new box.
    confidence : float or None
        Detector score of the last matched detection.
    pending_features : list of ndarray
        Features received since the tracker last handed them to the metric.
    """

    def __init__(
        self,
        mean: np.ndarray,
        covariance: np.ndarray,
        track_id: int,
        n_init: int,
        max_age: int,
        det_index: Optional[int] = None,
        feature: Optional[np.ndarray] = None,
        confidence: Optional[float] = None,
    ) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.covariance = np.asarray(covariance, dtype=np.float64)
        self.track_id = int(track_id)
        self.hits = 1
        self.age = 1
        self.time_since_update = 0
        self.state = TrackState.CONFIRMED if n_init <= 1 else TrackState.TENTATIVE
        self.det_index = None if det_index is None else int(det_index)
        self.confidence = None if confidence is None else float(confidence)
        self.revived = False
        self.held = False
        self.motion_stale = False
        self.pending_features: List[np.ndarray] = []
        if feature is not None:
            self.pending_features.append(np.asarray(feature))
        self._n_init = n_init
        self._max_age = max_age

    # ----------------------------------------------------------------- boxes
    def to_xyxy(self) -> np.ndarray:
        """The ``(4,)`` box ``(x1, y1, x2, y2)`` of the current state."""
        return xyah_to_xyxy(self.mean[:4])

    # ------------------------------------------------------------- lifecycle
    def is_tentative(self) -> bool:
        return self.state == TrackState.TENTATIVE

    def is_confirmed(self) -> bool:
        return self.state == TrackState.CONFIRMED

    def is_deleted(self) -> bool:
        return self.state == TrackState.DELETED

    def is_lost(self) -> bool:
        return self.state == TrackState.LOST

    def _advance(self) -> None:
        """Book-keeping of a prediction step: one frame older, not matched yet."""
        self.age += 1
        self.time_since_update += 1
        self.det_index = None
        self.revived = False

    def predict(self, kf: KalmanFilter) -> None:
        """Propagate the state one frame ahead (see :func:`predict_tracks` for many)."""
        self.mean, self.covariance = kf.predict(self.mean, self.covariance)
        self._advance()

    def update(
        self,
        kf: KalmanFilter,
        measurement: np.ndarray,
        det_index: int,
        feature: Optional[np.ndarray] = None,
        confidence: Optional[float] = None,
        reinitiate: bool = False,
        keep_velocity_within: int = 0,
    ) -> None:
        """Correct the state with a matched detection.

        Parameters
        ----------
        kf : KalmanFilter
        measurement : ndarray
            The ``(4,)`` detection box ``(cx, cy, a, h)``.
        det_index : int
            The detection's ``det_index``.
        feature : ndarray or None
            The ``(D,)`` appearance feature, queued for the metric.
        confidence : float or None
            The detector score.
        reinitiate : bool
            Restart the Kalman state from the box instead of correcting it
            (after a scene cut, or when revived from the lost buffer).
        keep_velocity_within : int
            With ``reinitiate``: when the track's previous hit is at most this
            many frames old and no cut came since, the restarted state moves
            at the image velocity of the jump (centre displacement per frame
            since that hit) instead of standing still. A face re-found by
            appearance because it moved beyond the motion gate (a fast pan,
            a small face crossing the frame) is then predicted where it goes.
            ``0``: always standing still.
        """
        if reinitiate or self.motion_stale:
            velocity = self._jump_velocity(measurement, keep_velocity_within) if reinitiate else None
            mean, covariance = kf.initiate(measurement)
            if velocity is not None:
                mean[4:6] = velocity
        else:
            mean, covariance = kf.update(self.mean, self.covariance, measurement)
        self._record_hit(mean, covariance, det_index, feature, confidence)

    def _jump_velocity(self, measurement: np.ndarray, within: int) -> Optional[np.ndarray]:
        """The ``(2,)`` centre velocity from the previous hit to ``measurement``, or None.

        None when ``within`` is 0, the previous hit is older than ``within``
        frames (or this track has none since its last update), or a cut came
        since (the motion is stale). The previous hit's centre is the current
        prediction moved back by ``time_since_update`` steps of its velocity
        (the constant-velocity model predicts linearly).
        """
        gap = self.time_since_update
        if within <= 0 or self.motion_stale or not 1 <= gap <= within:
            return None
        previous = self.mean[:2] - gap * self.mean[4:6]
        return (np.asarray(measurement, dtype=np.float64)[:2] - previous) / gap

    def _record_hit(self, mean, covariance, det_index, feature=None, confidence=None) -> None:
        """Book-keeping of a measurement update with the corrected state."""
        self.mean, self.covariance = mean, covariance
        self.motion_stale = False
        if feature is not None:
            self.pending_features.append(np.asarray(feature))
        self.det_index = int(det_index)
        self.confidence = None if confidence is None else float(confidence)
        self.hits += 1
        self.time_since_update = 0
        if self.state == TrackState.TENTATIVE and self.hits >= self._n_init:
            self.state = TrackState.CONFIRMED

    def take_pending_features(self) -> List[np.ndarray]:
        """The features queued since the last call, handed over once (the queue is emptied)."""
        features, self.pending_features = self.pending_features, []
        return features

    def mark_motion_stale(self) -> None:
        """A shot cut: the Kalman state describes the previous shot until the next match."""
        self.motion_stale = True

    def age_lost(self, frames: int) -> None:
        """A lost track grows ``frames`` older without being predicted."""
        self.age += frames
        self.time_since_update += frames

    def mark_lost(self) -> None:
        """Move to the lost buffer: no detection, kept for re-identification."""
        self.state = TrackState.LOST
        self.det_index = None

    def mark_deleted(self) -> None:
        """End the track for good."""
        self.state = TrackState.DELETED

    def revive(self) -> None:
        """Come back from the lost buffer, confirmed, under the same id."""
        self.state = TrackState.CONFIRMED
        self.revived = True

    def hold(self, undecided: bool) -> None:
        """Keep a track that reached ``n_init`` hits tentative while it may still be a lost one (or release it)."""
        self.held = bool(undecided)
        if undecided:
            self.state = TrackState.TENTATIVE

    def release(self) -> None:
        """A held track is a new face after all (outside evidence says so): confirmed, shown from now on."""
        self.held = False
        self.state = TrackState.CONFIRMED

    def continue_as(self, old: "Track", features: Sequence[np.ndarray]) -> None:
        """Go on as ``old`` (a lost or missing track of the same face), which ends.

        The track takes ``old``'s id and age, adds up both tracks' hits, is
        confirmed and marked revived. ``features`` replace its queue of
        pending features, so they are stored under the old id.
        """
        old.mark_deleted()
        self.track_id = old.track_id
        self.state = TrackState.CONFIRMED
        self.held = False
        self.age = old.age
        self.hits = old.hits + self.hits
        self.revived = True
        self.pending_features = list(features)

    def mark_missed(self) -> None:
        """Record a frame without a match; deletes tentative and expired tracks."""
        if self.state == TrackState.TENTATIVE:
            self.state = TrackState.DELETED
        elif self.time_since_update > self._max_age:
            self.state = TrackState.DELETED

    def __repr__(self) -> str:
        return (
            f"Track(id={self.track_id}, state={self.state.name}, hits={self.hits}, age={self.age}, "
            f"time_since_update={self.time_since_update}, det_index={self.det_index})"
        )


def predict_tracks(kf: KalmanFilter, tracks: Sequence[Track]) -> None:
    """Predict every track one frame ahead with one vectorised filter call.

    Equivalent to ``for t in tracks: t.predict(kf)``.
    """
    if not tracks:
        return
    means = np.stack([t.mean for t in tracks])
    covariances = np.stack([t.covariance for t in tracks])
    means, covariances = kf.multi_predict(means, covariances)
    for track, mean, cov in zip(tracks, means, covariances):
        track.mean, track.covariance = mean, cov
        track._advance()


def update_tracks(
    kf: KalmanFilter,
    tracks: Sequence[Track],
    measurements: np.ndarray,
    det_indices: Sequence[int],
    features: Optional[np.ndarray] = None,
    confidences: Optional[Sequence[float]] = None,
) -> None:
    """Update every track with its matched detection, one vectorised filter call.

    Equivalent to ``tracks[i].update(kf, measurements[i], det_indices[i],
    features[i], confidences[i])`` for each ``i``.

    Parameters
    ----------
    kf : KalmanFilter
    tracks : sequence of Track
        ``N`` tracks.
    measurements : ndarray
        An ``(N, 4)`` matrix of ``xyah`` boxes.
    det_indices : sequence of int
        ``N`` ``det_index`` values.
    features : ndarray or None
        An ``(N, D)`` matrix of features.
    confidences : sequence of float or None
        ``N`` detector scores.
    """
    if not len(tracks):
        return
    measurements = np.asarray(measurements, dtype=np.float64).reshape(len(tracks), 4)
    fresh = [i for i, t in enumerate(tracks) if not t.motion_stale]
    states = {}
    if fresh:
        means, covs = kf.multi_update(
            np.stack([tracks[i].mean for i in fresh]),
            np.stack([tracks[i].covariance for i in fresh]),
            measurements[fresh],
        )
        states = {i: (m, c) for i, m, c in zip(fresh, means, covs)}
    for i, track in enumerate(tracks):
        mean, cov = states[i] if i in states else kf.initiate(measurements[i])
        track._record_hit(
            mean,
            cov,
            det_indices[i],
            None if features is None else features[i],
            None if confidences is None else confidences[i],
        )
