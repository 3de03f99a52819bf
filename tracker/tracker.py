"""The multi-face tracker: DeepSORT with ArcFace appearance, shot cuts and
re-identification from a bounded buffer of lost tracks.

The costs live in :mod:`tracker.costs`, the matcher in :mod:`tracker.matching`,
the appearance-only pairing in :mod:`tracker.reidentification`, the lost
tracks in :class:`~tracker.lost_buffer.LostBuffer`, and every change of a
track's state is a :class:`~tracker.track.Track` method. This module runs the
steps of one update in order and returns one :class:`~tracker.result.TrackerUpdate`.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional

import numpy as np

from tracker.appearance import AppearanceMetric, NearestNeighborDistanceMetric
from tracker.boxes import xyah_to_xyxy, xyxy_to_xyah
from tracker.checks import check_bool, check_int, check_number
from tracker.association import AssociationLimits, associate
from tracker.costs import occluded
from tracker.detections import Detections
from tracker.ids import IdCounter
from tracker.kalman_filter import KalmanFilter
from tracker.lost_buffer import LostBuffer
from tracker.result import TrackerUpdate
from tracker import reidentification as reid
from tracker.track import Track, predict_tracks, update_tracks

logger = logging.getLogger(__name__)


class Tracker:
    """Multi-face tracker (DeepSORT + ArcFace cosine appearance).

    Parameters
    ----------
    max_cosine_distance : float
        Largest cosine distance ``1 - cos`` between a detection and the
        nearest stored feature of a track to match in the cascade (also on
        shot cuts), in ``(0, 2]``.
    reid_max_cosine_distance : float
        Stricter largest distance for appearance-only re-identification
        (lost buffer, absent tracks, motion-stale tracks), in ``(0, 2]``.
    budget : int
        Features kept per track, ``>= 1``.
    max_iou_distance : float
        Largest ``1 - IoU`` in the IoU stage, in ``(0, 1]``.
    max_age : int
        Frames without a match before a confirmed track leaves the active
        set (also the cascade depth), ``>= 1``.
    n_init : int
        Consecutive hits to confirm a track, ``>= 1``.
    gating_only_position : bool
        Gate on the box centre only (2 degrees of freedom) instead of ``xyah`` (4).
    lost_buffer_size : int
        Most lost tracks kept for re-identification, ``>= 0`` (0 disables it).
    lost_max_age : int
        Frames a lost track is kept, ``>= 0`` (0 disables re-identification).
    occlusion_iou : float
        A detection overlapping another by more than this IoU is matched, but
        its feature is not stored as the track's appearance, in ``(0, 1]``.
    appearance_veto : bool
        In the IoU stage, reject pairs farther apart than ``max_cosine_distance``.
    reid_window : int
        Frames after its start during which a confirmed track may still take
        an absent track's id with all its features, ``>= 0``.
    reid_min_confidence : float
        Detections scoring below this take no part in appearance-only
        matching (re-identification, young-track features, stale tracks
        after a cut), in ``[0, 1]``. They still match by motion and start tracks.
    reid_velocity_frames : int
        An active track re-found by appearance within this many frames of its previous hit moves on at the
        jump's velocity (``Track.update`` ``keep_velocity_within``), ``>= 0``; 0: restarts standing still.
    hold_cosine_distance : float
        A track reaching ``n_init`` hits whose confident features come within
        this distance of an absent track, or that has no confident feature
        yet, stays tentative (``track.held``, not shown) until it is
        re-identified, moves out of range or reaches ``hold_max_hits``; in
        ``[0, 2]``, 0 disables holding.
    hold_max_hits : int
        Hits after which a held track is confirmed as a new face, ``>= 1``.
    hold_min_confidence : float
        A young track without confident features is compared for holding by
        its latest feature if that scored at least this, in ``[0, 1]``.
    low_score_threshold : float
        Detections scoring below this only continue, by IoU, confirmed tracks matched on the previous update
        and left unmatched (ByteTrack); they start no track and store no appearance. In ``[0, 1]``, 0 = off.
    std_weight_position, std_weight_velocity : float
        Kalman noise as fractions of the box height; ignored with ``kalman_filter``.
    kalman_filter : KalmanFilter or None
        A filter to use instead of one built from the weights above.
    metric : AppearanceMetric or None
        The appearance store (default: a
        :class:`~tracker.appearance.NearestNeighborDistanceMetric` of ``budget``).
    id_counter : IdCounter or None
        Where ids come from (default: a counter owned by this tracker).

    Raises
    ------
    ValueError
        On a keyword out of range; the message names it.

    Notes
    -----
    Ages count frames, not updates: a caller that detects every k-th frame
    passes ``elapsed_frames=k``. See ``docs/tuning.md`` for how the defaults
    were measured.
    """

    def __init__(
        self,
        max_cosine_distance: float = 0.5,
        reid_max_cosine_distance: float = 0.45,
        budget: int = 50,
        max_iou_distance: float = 0.7,
        max_age: int = 90,
        n_init: int = 4,
        gating_only_position: bool = False,
        lost_buffer_size: int = 100,
        lost_max_age: int = 1500,
        occlusion_iou: float = 0.3,
        appearance_veto: bool = False,
        reid_window: int = 30,
        reid_min_confidence: float = 0.75,
        reid_velocity_frames: int = 6,
        hold_cosine_distance: float = 0.7,
        hold_max_hits: int = 15,
        hold_min_confidence: float = 0.75,
        low_score_threshold: float = 0.0,
        std_weight_position: float = 1.0 / 20,
        std_weight_velocity: float = 1.0 / 160,
        kalman_filter: Optional[KalmanFilter] = None,
        metric: Optional[AppearanceMetric] = None,
        id_counter: Optional[IdCounter] = None,
    ) -> None:
        self.max_cosine_distance = check_number("max_cosine_distance", max_cosine_distance, 0, 2, low_open=True)
        self.reid_max_cosine_distance = check_number("reid_max_cosine_distance", reid_max_cosine_distance, 0, 2,
                                                     low_open=True)
        self.max_iou_distance = check_number("max_iou_distance", max_iou_distance, 0, 1, low_open=True)
        self.max_age = check_int("max_age", max_age, 1)
        self.n_init = check_int("n_init", n_init, 1)
        self.gating_only_position = check_bool("gating_only_position", gating_only_position)
        self.occlusion_iou = check_number("occlusion_iou", occlusion_iou, 0, 1, low_open=True)
        self.appearance_veto = check_bool("appearance_veto", appearance_veto)
        self.reid_window = check_int("reid_window", reid_window, 0)
        self.reid_min_confidence = check_number("reid_min_confidence", reid_min_confidence, 0, 1)
        self.reid_velocity_frames = check_int("reid_velocity_frames", reid_velocity_frames, 0)
        self.hold_cosine_distance = check_number("hold_cosine_distance", hold_cosine_distance, 0, 2)
        self.hold_max_hits = check_int("hold_max_hits", hold_max_hits, 1)
        self.hold_min_confidence = check_number("hold_min_confidence", hold_min_confidence, 0, 1)
        self.limits = AssociationLimits(
            self.max_cosine_distance, self.reid_max_cosine_distance, self.max_iou_distance, self.max_age,
            self.reid_min_confidence, self.gating_only_position, self.appearance_veto,
            check_number("low_score_threshold", low_score_threshold, 0, 1))
        self.lost = LostBuffer(lost_buffer_size, lost_max_age)
        if kalman_filter is None:
            kalman_filter = KalmanFilter(std_weight_position, std_weight_velocity)
        elif not isinstance(kalman_filter, KalmanFilter):
            raise ValueError(f"kalman_filter must be a KalmanFilter, got {type(kalman_filter).__name__}")
        if metric is None:
            metric = NearestNeighborDistanceMetric(check_int("budget", budget, 1))
        elif not isinstance(metric, AppearanceMetric):
            raise ValueError("metric must provide distance(), partial_fit(), has_samples() and reset()")
        self._owns_counter = id_counter is None
        if id_counter is not None and not callable(getattr(id_counter, "next_id", None)):
            raise ValueError("id_counter must provide next_id()")
        self.kf, self.metric, self.id_counter = kalman_filter, metric, IdCounter() if id_counter is None else id_counter
        self.tracks, self.frame_count = [], 0   # the active tracks (List[Track]); frames seen
        self._young_features: Dict[int, List[np.ndarray]] = {}

    # ------------------------------------------------------------------ public
    @property
    def lost_tracks(self) -> List[Track]:
        """Tracks waiting in the lost buffer, oldest loss first."""
        return self.lost.tracks()

    def absent_tracks(self) -> List[Track]:
        """Tracks a returning face may be: the lost ones and the confirmed ones not matched on the last update."""
        return self.lost.tracks() + [t for t in self.tracks if t.is_confirmed() and t.time_since_update > 0]

    def predicted_boxes(self, track_ids, frames_ahead: int) -> np.ndarray:
        """``(N, 4)`` xyxy boxes of active tracks ``frames_ahead`` frames after the last update.

        The constant-velocity Kalman mean moved on without changing any
        state (``frames_ahead`` may be 0). Unknown ids raise ``KeyError``.
        """
        by_id = {t.track_id: t for t in self.tracks}
        means = np.asarray([by_id[int(i)].mean for i in track_ids], np.float64).reshape(-1, 8)
        return xyah_to_xyxy(means[:, :4] + frames_ahead * means[:, 4:]).reshape(-1, 4)

    def reset(self) -> TrackerUpdate:
        """Forget every track (the result lists them as ended); an id counter the tracker owns restarts."""
        ended = [t.track_id for t in self.tracks] + self.lost.clear()
        self.tracks = []
        self._young_features.clear()
        self.metric.reset()
        self.frame_count = 0
        if self._owns_counter:
            self.id_counter.reset()
        return TrackerUpdate([], ended_ids=ended)

    def update(self, detections: Detections, scene_cut: bool = False, elapsed_frames: int = 1, *,
               held_linker: Optional[reid.HeldLinker] = None) -> TrackerUpdate:
        """Advance ``elapsed_frames`` frames with this frame's detections; returns a :class:`TrackerUpdate`.

        Parameters
        ----------
        detections : Detections
            The detector's ``N`` rows, with an ``(N, D)`` embedding or none
            (then the appearance stages are skipped and every track is matched by IoU).
        scene_cut : bool
            The frame starts a new shot: associate by appearance alone.
        elapsed_frames : int
            Frames since the previous update (``>= 1``); motion and ages count frames.
        held_linker : callable or None
            Outside evidence for held tracks (:data:`tracker.reidentification.HeldLinker`),
            called after the tracks are retired and before features are stored; each valid
            ``(held id, absent id)`` continues the held track under the absent id, ``(held id, None)`` shows it.
        """
        if not isinstance(detections, Detections):
            raise TypeError(f"detections must be a Detections, got {type(detections).__name__}")
        step = check_int("elapsed_frames", elapsed_frames, 1)
        self.frame_count += step
        out = TrackerUpdate([])
        features = detections.embedding if len(detections) else None
        measurements = xyxy_to_xyah(detections.xyxy)

        # Step 1: predict the active tracks `step` frames ahead; lost tracks age too.
        self._predict(step, scene_cut)
        tentative_before = {id(t) for t in self.tracks if t.is_tentative()}

        # Steps 2-3: cascade by appearance and motion, then IoU; update the matched tracks.
        matches, unmatched_tracks, unmatched_dets = associate(
            self.tracks, detections, features, metric=self.metric, kf=self.kf, limits=self.limits, step=step,
            cut=scene_cut)
        self._update_matched(matches, detections, measurements, features)
        was_confirmed = {id(self.tracks[ti]) for ti in unmatched_tracks if self.tracks[ti].is_confirmed()}
        for ti in unmatched_tracks:
            self.tracks[ti].mark_missed()

        # Step 4: appearance-only re-identification: young tracks with all their
        # features, then held new tracks, then the detections still unmatched.
        unmatched_dets = self._reidentification(detections, measurements, features, unmatched_dets,
                                                tentative_before, out)

        # Step 5: new tentative tracks.
        for di in unmatched_dets:
            self._start_track(detections, measurements, features, di)

        # Step 6: retire deleted tracks to the lost buffer or end them.
        self._retire(was_confirmed, out)

        # Step 7: outside evidence for held tracks, then this frame's features to the metric.
        if held_linker is not None:
            self._link_held(held_linker, out)
        self._fit_metric()
        out.tracks = list(self.tracks)
        return out

    # ----------------------------------------------------------------- stages
    def _predict(self, step: int, scene_cut: bool) -> None:
        for _ in range(step):
            predict_tracks(self.kf, self.tracks)
        self.lost.age(step)
        if scene_cut:
            for track in self.tracks:
                track.mark_motion_stale()

    def _update_matched(self, matches, detections: Detections, measurements, features) -> None:
        if not matches:
            return
        hidden = occluded(detections.xyxy, self.occlusion_iou)  # overlapped or low-scoring faces: no appearance
        hidden |= detections.confidence < self.limits.low_score_threshold
        rows = [di for _, di in matches]
        update_tracks(
            self.kf, [self.tracks[ti] for ti, _ in matches], measurements[rows], detections.det_index[rows],
            None if features is None else [None if hidden[di] else features[di] for di in rows],
            detections.confidence[rows])

    def _reidentification(self, detections, measurements, features, unmatched_dets, tentative_before,
                          out: TrackerUpdate) -> List[int]:
        if self.reid_window:
            self._merge_young([t for t in self.tracks
                               if t.is_confirmed() and t.time_since_update == 0 and t.age <= self.reid_window], out)
        self._hold_undecided([t for t in self.tracks
                              if id(t) in tentative_before and t.is_confirmed() and not t.revived])
        return self._reidentify(detections, measurements, features, unmatched_dets, out)

    def _merge_young(self, young: List[Track], out: TrackerUpdate) -> None:
        """Give each young track the id of the absent track it is (all its confident features compared)."""
        feats = {id(t): self._young_track_features(t) for t in young}
        young = [t for t in young if feats[id(t)]]
        candidates = self.absent_tracks() if young else []
        pairs = reid.young_track_pairs([feats[id(t)] for t in young], candidates, self.metric,
                                       self.reid_max_cosine_distance)
        for y, c in pairs:
            self._continue_as(young[y], candidates[c], feats[id(young[y])], out)

    def _continue_as(self, track: Track, old: Track, features: List[np.ndarray], out: TrackerUpdate) -> None:
        """``track`` goes on under ``old``'s id; ``old`` (lost or missing) is gone."""
        self._young_features.pop(track.track_id, None)
        out.ended_ids.append(track.track_id)
        if old.track_id in self.lost:
            self.lost.pop(old.track_id)
        else:
            self.tracks = [t for t in self.tracks if t is not old]
        logger.debug("track %d is track %d", track.track_id, old.track_id)
        track.continue_as(old, features)
        out.revived_ids.append(track.track_id)

    def _hold_undecided(self, confirmed: List[Track]) -> None:
        """Hold tracks confirmed this update while they may still be an absent one (``hold_cosine_distance``)."""
        if self.hold_cosine_distance <= 0 or not self.reid_window or not confirmed:
            return  # without young-track re-identification a held track could never take an old id
        targets = [t.track_id for t in self.absent_tracks() if self.metric.has_samples(t.track_id)]
        for track in confirmed:
            features = (self._young_track_features(track)
                        or reid.confident_features(track, self.hold_min_confidence))
            track.hold(bool(targets) and track.hits < self.hold_max_hits and reid.undecided(
                features, targets, self.metric, self.hold_cosine_distance))

    def _young_track_features(self, track: Track) -> List[np.ndarray]:
        """The confident features a young track has collected so far, this update's included."""
        return self._young_features.get(track.track_id, []) + reid.confident_features(track, self.reid_min_confidence)

    def _reidentify(self, detections, measurements, features, unmatched_dets, out: TrackerUpdate) -> List[int]:
        """Match leftover confident detections to absent tracks by appearance alone."""
        if features is None or not unmatched_dets:
            return unmatched_dets
        # Low-confidence detections (faces half out of the frame or occluded) start tracks, never revive ids.
        weak = [d for d in unmatched_dets if detections.confidence[d] < self.reid_min_confidence]
        strong = [d for d in unmatched_dets if d not in weak]
        candidates = self.absent_tracks() if strong else []
        if not candidates:
            return weak + strong
        matches, left = reid.detection_pairs(candidates, detections, strong, self.metric, features,
                                             self.reid_max_cosine_distance)
        for ci, di in matches:
            track = candidates[ci]
            was_lost = track.track_id in self.lost   # its state was not predicted while it waited
            if was_lost:
                self.lost.pop(track.track_id)
                track.revive()
                self.tracks.append(track)
                out.revived_ids.append(track.track_id)
                logger.debug("track %d revived from the lost buffer", track.track_id)
            track.update(self.kf, measurements[di], detections.det_index[di],
                         feature=None if features is None else features[di],
                         confidence=detections.confidence[di], reinitiate=True,
                         keep_velocity_within=0 if was_lost else self.reid_velocity_frames)
        return weak + left

    def _start_track(self, detections, measurements, features, di) -> None:
        mean, covariance = self.kf.initiate(measurements[di])
        self.tracks.append(Track(
            mean, covariance, self.id_counter.next_id(), self.n_init, self.max_age,
            det_index=detections.det_index[di], feature=None if features is None else features[di],
            confidence=detections.confidence[di]))

    def _retire(self, was_confirmed, out: TrackerUpdate) -> None:
        """Deleted confirmed tracks go to the lost buffer (when it can re-identify them), others end."""
        alive = []
        for track in self.tracks:
            if not track.is_deleted():
                alive.append(track)
            elif id(track) in was_confirmed and self.lost.enabled and (
                    self.metric.has_samples(track.track_id) or track.pending_features):
                self.lost.add(track, self.frame_count)
                out.lost_ids.append(track.track_id)
            else:
                track.mark_deleted()
                out.ended_ids.append(track.track_id)
        self.tracks = alive
        expired = self.lost.expire(self.frame_count)
        out.ended_ids.extend(expired)
        out.lost_ids = [tid for tid in out.lost_ids if tid not in expired]

    def _link_held(self, held_linker: reid.HeldLinker, out: TrackerUpdate) -> None:
        held = [t for t in self.tracks if t.held and t.is_tentative() and t.time_since_update == 0]
        if held:
            absent = self.absent_tracks()
            links, released = reid.valid_links(held_linker(held, absent), held, absent)
            for track, old in links:
                self._continue_as(track, old, self._young_track_features(track), out)
            for track in released:
                track.release()

    def _fit_metric(self) -> None:
        features, targets, young = [], [], {}
        for track in self.tracks:
            if track.age <= self.reid_window:
                young[track.track_id] = self._young_track_features(track)
            pending = track.take_pending_features()
            features += pending
            targets += [track.track_id] * len(pending)
        self._young_features = young
        active = [t.track_id for t in self.tracks] + self.lost.ids()
        stacked = np.stack(features) if features else np.zeros((0, 0), np.float32)
        self.metric.partial_fit(stacked, np.asarray(targets, np.int64), active)
