"""The multi-face tracker: DeepSORT with ArcFace appearance, shot cuts and
re-identification from a bounded buffer of lost tracks.

Per update (:meth:`Tracker.update`), ``elapsed_frames`` after the previous one
(the pipeline detects every k-th frame and passes k; ages count frames):

1. Predict every active track ``elapsed_frames`` frames ahead (vectorised
   Kalman calls); lost tracks age too.
2. Matching cascade: confirmed tracks, most recently seen first, against the
   detections by nearest-neighbour cosine distance, gated by the Kalman
   Mahalanobis distance (chi-square 0.95) and by ``max_cosine_distance``.
3. IoU matching of tentative tracks and of tracks matched on the previous
   update against the detections left over, up to ``max_iou_distance``.
   Embeddings of detections overlapping another detection by more than
   ``occlusion_iou`` are used for matching but not stored as a track's
   appearance (the crop blends two faces). A tentative track still unmatched
   then takes a confident detection by appearance alone at
   ``reid_max_cosine_distance`` (a face moving more than about half its width
   per frame overlaps its one-box track too little for IoU).
4. Re-identification by appearance alone (``reid_max_cosine_distance``,
   stricter): (a) every confirmed track younger than ``reid_window`` frames
   that was matched this frame is compared, with all its features, with the
   lost buffer and with the confirmed tracks not matched this frame; a match
   hands it the old id (a re-entering face whose first detections were too
   poor to re-identify, e.g. half in the frame, no longer keeps a new id);
   (b) detections still unmatched against the lost-track buffer and against
   confirmed tracks not matched this frame (a face that jumped out of its
   motion gate). A match revives the old id with its Kalman state restarted
   from the new box. (c) A track confirmed this update and not given an old
   id, whose identity is still undecided (``hold_cosine_distance``), is held
   tentative, so it is not shown under a new id for the few frames until a
   clearer view re-identifies it.
5. Start a tentative track for every detection still unmatched.
6. Tentative tracks missed once are deleted; confirmed tracks missed more
   than ``max_age`` frames move to the lost buffer, which is bounded in count
   (``lost_buffer_size``) and age (``lost_max_age`` frames).

On a shot cut (``update(detections, scene_cut=True)``) the Kalman states of
all tracks describe the previous shot: every active track is matched by
appearance alone (no motion gate, no IoU stage), and a matched track's state
restarts from its new box. Tracks not matched on the cut frame stay active
but remain "motion stale" (appearance-only, re-initialised when matched)
until they are matched or retire; after the cut frame they are held to the
stricter ``reid_max_cosine_distance``, like lost tracks (on seed 1 of the
simulator a barely visible face of someone else took over such a track at
``max_cosine_distance``).

Without embeddings (``detections.embedding is None``, e.g. when the pipeline
skips the embedder on some frames) the appearance stages are skipped: every
active track, confirmed or not, is matched by IoU alone that frame, and no
lost track can be revived.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from tracker.appearance import NearestNeighborDistanceMetric
from scipy.optimize import linear_sum_assignment

from tracker.boxes import iou_matrix, xyxy_to_xyah
from tracker.detections import Detections
from tracker.ids import IdCounter
from tracker.kalman_filter import KalmanFilter
from tracker.matching import INFTY_COST, gating_mask, iou_cost, matching_cascade, min_cost_matching
from tracker.track import Track, TrackState, predict_tracks, update_tracks

logger = logging.getLogger(__name__)


def _check_number(name: str, value, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    bad_low = value <= low if low_open else value < low
    if not np.isfinite(value) or bad_low or value > high:
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class Tracker:
    """Multi-face tracker (DeepSORT + ArcFace cosine appearance).

    Parameters
    ----------
    max_cosine_distance : float
        Largest cosine distance ``1 - cos`` between a detection's embedding and
        the nearest stored embedding of a track for them to match in the
        cascade (also on shot cuts), in ``(0, 2]``.
    reid_max_cosine_distance : float
        Stricter largest cosine distance for appearance-only
        re-identification (lost buffer, tracks missing >= 2 frames), in
        ``(0, 2]``. Usually below ``max_cosine_distance``.
    budget : int
        Embeddings kept per track (the last ``budget``), ``>= 1``.
    max_iou_distance : float
        Largest ``1 - IoU`` for the IoU stage, in ``(0, 1]``.
    max_age : int
        Frames without a match before a confirmed track leaves the active
        set (also the cascade depth), ``>= 1``. Frames, not updates: with
        ``elapsed_frames=k`` one missed update counts k.
    n_init : int
        Consecutive hits to confirm a track, ``>= 1``.
    gating_only_position : bool
        Gate on the box centre only (2 degrees of freedom) instead of the full
        ``xyah`` measurement (4).
    lost_buffer_size : int
        Most lost tracks kept for re-identification (oldest dropped first);
        0 disables re-identification.
    lost_max_age : int
        Frames a lost track is kept, ``>= 0``; 0 disables re-identification.
    occlusion_iou : float
        A detection overlapping another one by more than this IoU is matched
        as usual, but its embedding is not stored as the track's appearance,
        in ``(0, 1]`` (1 stores every embedding).
    appearance_veto : bool
        In the IoU stage, reject a pair whose cosine distance exceeds
        ``max_cosine_distance`` (when both have embeddings).
    reid_window : int
        Frames after its start during which a confirmed track may still be
        re-identified as a lost or missing track with all its features
        (step 4a), ``>= 0``; 0 re-identifies single detections only.
    reid_min_confidence : float
        Detections scoring below this take no part in appearance-only
        matching (re-identification, young-track features, stale tracks after
        a cut), in ``[0, 1]``: a face half out of the frame or occluded scores
        lower and its embedding can be closer to someone else than to itself.
        They still match by motion and start tracks.
    hold_cosine_distance : float
        A track reaching ``n_init`` hits whose confident features come within
        this cosine distance of a lost or missing track (closer ones were
        already merged at ``reid_max_cosine_distance``), or that has no
        confident feature yet, stays tentative (``track.held``) until it is
        re-identified, moves out of range or reaches ``hold_max_hits``; in
        ``[0, 2]``, 0 disables holding (so does ``reid_window=0``: only
        step 4a can hand a held track an old id). A face re-entering half-visible is
        0.5-0.75 from its old track until a clear view arrives; shown under a
        new id meanwhile, it cost two ID switches per re-entry.
    hold_max_hits : int
        Hits after which a held track is confirmed as a new face, ``>= 1``.
    std_weight_position, std_weight_velocity : float
        Kalman noise as fractions of the box height (see
        :class:`~tracker.kalman_filter.KalmanFilter`); ignored when
        ``kalman_filter`` is given.
    kalman_filter : KalmanFilter or None
        A filter to use instead of one built from the weights above.
    metric : NearestNeighborDistanceMetric or None
        An appearance metric to use instead of one built from
        ``max_cosine_distance`` and ``budget``.
    id_counter : IdCounter or None
        Where ids come from. Default: a fresh counter owned by this tracker
        (ids 1, 2, ...). Share one counter between trackers to keep their ids
        disjoint.

    Attributes
    ----------
    tracks : list of Track
        Active tracks (tentative and confirmed) after the last update.
    lost_ids : list of int
        Ids of confirmed tracks that moved to the lost buffer in the last
        update.
    ended_ids : list of int
        Ids gone for good in the last update (tentative tracks deleted, lost
        tracks expired or dropped, and every id on :meth:`reset`).
    revived_ids : list of int
        Ids revived from the lost buffer in the last update.

    Raises
    ------
    ValueError
        On a keyword out of range; the message names it.

    Notes
    -----
    The cosine defaults were measured with EdgeFace-XS (``edgeface_xs.onnx``,
    512-d) on ``../shared``: consecutive frames of one face are 0.014 apart
    (median; max 0.33 over 1,040 pairs), one face 30 frames apart 0.13 (p99
    0.42), the same person in different photos 0.30 (p95 0.45, max 0.58),
    different people 0.99 (min 0.74 over 422 pairs, 0.78 between faces of one
    video frame). ``0.5`` accepts every same-face distance between frames and
    98.5% of cross-photo pairs (what a shot cut needs) and stays 0.24 below
    the closest pair of different people; ``0.45`` for re-identification, which
    has no motion gate and searches the whole lost buffer, is the p95 of
    cross-photo pairs (a re-entering person in a new shot is another photo)
    and keeps 0.29 of margin. On the simulator (2000 frames, seeds 0 and 1)
    0.45 gave IDF1 0.944 / 0.913 against 0.945 / 0.890 with 0.4, and 0.5
    started naming errors. Pedestrian re-id's 0.2 would reject 27% of
    same-face pairs only 30 frames apart.

    ``max_age`` and ``lost_max_age`` count frames: the pipeline detects every
    k-th frame and passes ``elapsed_frames=k``. Counting updates made the
    Kalman velocity a per-update quantity whose unit changed whenever the
    pipeline switched between its warm-up interval (1) and its interval (3),
    which threw the predictions off at crossings (ID switches 49 -> 20 on the
    seed-0 simulator sequence once ages and motion count frames).
    """

    def __init__(
        self,
        max_cosine_distance: float = 0.5,
        reid_max_cosine_distance: float = 0.45,
        budget: int = 50,
        max_iou_distance: float = 0.7,
        max_age: int = 90,
        n_init: int = 3,
        gating_only_position: bool = False,
        lost_buffer_size: int = 100,
        lost_max_age: int = 1500,
        occlusion_iou: float = 0.3,
        appearance_veto: bool = False,
        reid_window: int = 30,
        reid_min_confidence: float = 0.0,
        hold_cosine_distance: float = 0.7,
        hold_max_hits: int = 15,
        std_weight_position: float = 1.0 / 20,
        std_weight_velocity: float = 1.0 / 160,
        kalman_filter: Optional[KalmanFilter] = None,
        metric: Optional[NearestNeighborDistanceMetric] = None,
        id_counter: Optional[IdCounter] = None,
    ) -> None:
        self.max_cosine_distance = _check_number("max_cosine_distance", max_cosine_distance, 0, 2, low_open=True)
        self.reid_max_cosine_distance = _check_number(
            "reid_max_cosine_distance", reid_max_cosine_distance, 0, 2, low_open=True
        )
        self.budget = _check_int("budget", budget, 1)
        self.max_iou_distance = _check_number("max_iou_distance", max_iou_distance, 0, 1, low_open=True)
        self.max_age = _check_int("max_age", max_age, 1)
        self.n_init = _check_int("n_init", n_init, 1)
        if not isinstance(gating_only_position, (bool, np.bool_)):
            raise ValueError(f"gating_only_position must be a bool, got {gating_only_position!r}")
        self.gating_only_position = bool(gating_only_position)
        self.lost_buffer_size = _check_int("lost_buffer_size", lost_buffer_size, 0)
        self.lost_max_age = _check_int("lost_max_age", lost_max_age, 0)
        self.occlusion_iou = _check_number("occlusion_iou", occlusion_iou, 0, 1, low_open=True)
        if not isinstance(appearance_veto, (bool, np.bool_)):
            raise ValueError(f"appearance_veto must be a bool, got {appearance_veto!r}")
        self.appearance_veto = bool(appearance_veto)
        self.reid_window = _check_int("reid_window", reid_window, 0)
        self.reid_min_confidence = _check_number("reid_min_confidence", reid_min_confidence, 0, 1)
        self.hold_cosine_distance = _check_number("hold_cosine_distance", hold_cosine_distance, 0, 2)
        self.hold_max_hits = _check_int("hold_max_hits", hold_max_hits, 1)
        if kalman_filter is None:
            try:
                kalman_filter = KalmanFilter(std_weight_position, std_weight_velocity)
            except ValueError as err:  # keep the parameter's name in the message
                raise ValueError(str(err)) from None
        elif not isinstance(kalman_filter, KalmanFilter):
            raise ValueError(f"kalman_filter must be a KalmanFilter, got {type(kalman_filter).__name__}")
        if metric is None:
            metric = NearestNeighborDistanceMetric(self.max_cosine_distance, self.budget)
        elif not all(callable(getattr(metric, m, None)) for m in ("distance", "partial_fit", "has_samples", "reset")):
            raise ValueError("metric must provide distance(), partial_fit(), has_samples() and reset()")
        if id_counter is None:
            id_counter, self._owns_counter = IdCounter(), True
        elif not callable(getattr(id_counter, "next_id", None)):
            raise ValueError("id_counter must provide next_id()")
        else:
            self._owns_counter = False

        self.kf = kalman_filter
        self.metric = metric
        self.id_counter = id_counter
        self.tracks: List[Track] = []
        self._lost: "OrderedDict[int, Track]" = OrderedDict()
        self._lost_since: Dict[int, int] = {}
        self.frame_count = 0
        self.lost_ids: List[int] = []
        self.ended_ids: List[int] = []
        self.revived_ids: List[int] = []
        self._young_features: Dict[int, List[np.ndarray]] = {}
        self._cut_frame = False

    # ------------------------------------------------------------------ public
    @property
    def lost_tracks(self) -> List[Track]:
        """Tracks waiting in the lost buffer, oldest loss first."""
        return list(self._lost.values())

    def absent_tracks(self) -> List[Track]:
        """Tracks a returning face may be: the lost ones and the confirmed ones not matched on the last update."""
        return list(self._lost.values()) + [t for t in self.tracks if t.is_confirmed() and t.time_since_update > 0]

    def reset(self) -> None:
        """Forget every track; ``ended_ids`` lists them all afterwards.

        The id counter restarts when the tracker owns it (no ``id_counter``
        was passed in); a shared counter is left alone.
        """
        self.ended_ids = [t.track_id for t in self.tracks] + list(self._lost)
        self.lost_ids, self.revived_ids = [], []
        self.tracks = []
        self._lost.clear()
        self._lost_since.clear()
        self._young_features.clear()
        self.metric.reset()
        self.frame_count = 0
        if self._owns_counter:
            self.id_counter.reset()

    def update(self, detections: Detections, scene_cut: bool = False, elapsed_frames: int = 1) -> List[Track]:
        """Advance one frame with this frame's detections.

        Parameters
        ----------
        detections : Detections
            The detector's output for the frame (``N`` rows), with an
            ``(N, D)`` embedding or ``embedding=None`` (appearance stages
            skipped for this frame).
        scene_cut : bool
            The frame starts a new shot: associate by appearance alone.
        elapsed_frames : int
            Frames since the previous update (``>= 1``). A caller that runs
            the detector every k-th frame passes k: the Kalman state is
            predicted k frames ahead, and ages (``time_since_update``,
            ``max_age``, ``lost_max_age``) count frames, not updates.

        Returns
        -------
        list of Track
            The active tracks (tentative and confirmed) after the update;
            ``track.det_index`` names the detection each was matched with this
            frame (``None`` when coasting).
        """
        if not isinstance(detections, Detections):
            raise TypeError(f"detections must be a Detections, got {type(detections).__name__}")
        step = _check_int("elapsed_frames", elapsed_frames, 1)
        self.frame_count += step
        self.lost_ids, self.ended_ids, self.revived_ids = [], [], []
        features = detections.embedding if len(detections) else None
        measurements = xyxy_to_xyah(detections.xyxy)

        # Step 1: predict the active tracks `step` frames ahead; lost tracks age too.
        for _ in range(step):
            predict_tracks(self.kf, self.tracks)
        for track in self._lost.values():
            track.age += step
            track.time_since_update += step
        self._cut_frame = bool(scene_cut)
        if scene_cut:
            for track in self.tracks:
                track.motion_stale = True

        tentative_before = {id(t) for t in self.tracks if t.is_tentative()}
        # Steps 2-3: cascade by appearance + motion, then IoU.
        matches, unmatched_tracks, unmatched_dets = self._associate(detections, features, step)
        occluded = self._occluded(detections)
        if matches:
            rows = [di for _, di in matches]
            update_tracks(
                self.kf,
                [self.tracks[ti] for ti, _ in matches],
                measurements[rows],
                detections.det_index[rows],
                None if features is None else [None if occluded[di] else features[di] for di in rows],
                detections.confidence[rows],
            )
        was_confirmed = {id(self.tracks[ti]) for ti in unmatched_tracks if self.tracks[ti].is_confirmed()}
        for ti in unmatched_tracks:
            self.tracks[ti].mark_missed()

        # Step 4: appearance-only re-identification: tracks confirmed this
        # frame against the lost buffer with all their features, then the
        # detections still unmatched.
        if self.reid_window:
            self._merge_young(
                [t for t in self.tracks if t.is_confirmed() and t.time_since_update == 0 and t.age <= self.reid_window]
            )
        self._hold_undecided([t for t in self.tracks if id(t) in tentative_before and t.is_confirmed() and not t.revived])
        unmatched_dets = self._reidentify(detections, measurements, features, unmatched_dets, step)

        # Step 5: new tentative tracks.
        for di in unmatched_dets:
            self._start_track(detections, measurements, features, di)

        # Step 6: retire deleted tracks to the lost buffer or end them.
        alive = []
        for track in self.tracks:
            if not track.is_deleted():
                alive.append(track)
            elif id(track) in was_confirmed:
                self._to_lost(track)
            else:
                self.ended_ids.append(track.track_id)
        self.tracks = alive
        self._expire_lost()

        # Step 7: hand this frame's features to the metric; keep active + lost.
        self._fit_metric()
        return list(self.tracks)

    # ----------------------------------------------------------------- stages
    def _appearance_cost(self, features: np.ndarray, gate: bool):
        """A cost function: nearest cosine distance, optionally motion-gated."""

        def cost(tracks: Sequence[Track], detections: Detections, track_indices, detection_indices):
            targets = [tracks[k].track_id for k in track_indices]
            if not gate:
                return self.metric.distance(features[detection_indices], targets)
            # Gate first (tracks with stale motion are not gated), then compute
            # appearance only for the plausible pairs.
            feasible = np.ones((len(track_indices), len(detection_indices)), dtype=bool)
            rows = [r for r, k in enumerate(track_indices) if not tracks[k].motion_stale]
            if rows:
                feasible[rows] = gating_mask(
                    self.kf,
                    tracks,
                    detections,
                    [track_indices[r] for r in rows],
                    detection_indices,
                    only_position=self.gating_only_position,
                )
            matrix = self.metric.distance(features[detection_indices], targets, mask=feasible)
            matrix[~feasible] = INFTY_COST
            if not self._cut_frame:
                # After the cut frame a stale track is matched by appearance
                # alone, like a lost one: hold it to the re-id threshold.
                stale = [r for r, k in enumerate(track_indices) if tracks[k].motion_stale]
                sub = matrix[stale]
                sub[sub > self.reid_max_cosine_distance] = INFTY_COST
                sub[:, detections.confidence[detection_indices] < self.reid_min_confidence] = INFTY_COST
                matrix[stale] = sub
            return matrix

        return cost

    def _occluded(self, detections: Detections) -> np.ndarray:
        """``(N,)`` bool: the box overlaps another detection by more than ``occlusion_iou``.

        The crop of such a face blends two people, so its embedding is used
        to match but is not stored as the track's appearance.
        """
        n = len(detections)
        if n < 2:
            return np.zeros(n, dtype=bool)
        iou = iou_matrix(detections.xyxy, detections.xyxy)
        np.fill_diagonal(iou, 0.0)
        return iou.max(axis=1) > self.occlusion_iou

    def _iou_cost(self, features: Optional[np.ndarray]):
        """IoU cost; with ``appearance_veto`` a pair whose cosine distance exceeds
        ``max_cosine_distance`` is rejected (both sides need embeddings)."""
        if features is None or not self.appearance_veto:
            return iou_cost

        def cost(tracks, detections, track_indices, detection_indices):
            matrix = iou_cost(tracks, detections, track_indices, detection_indices)
            targets = [tracks[k].track_id for k in track_indices]
            app = self.metric.distance(features[detection_indices], targets)
            matrix[np.isfinite(app) & (app > self.max_cosine_distance)] = INFTY_COST
            return matrix

        return cost

    def _associate(self, detections: Detections, features: Optional[np.ndarray], step: int = 1):
        tracks = self.tracks
        fresh = [i for i, t in enumerate(tracks) if not t.motion_stale]
        if features is None:
            # Motion only: every track with a valid Kalman state, by IoU.
            matches, unmatched_iou, unmatched_dets = min_cost_matching(
                iou_cost, self.max_iou_distance, tracks, detections, fresh
            )
            matched = {k for k, _ in matches}
            unmatched_tracks = [i for i in range(len(tracks)) if i not in matched]
            return matches, unmatched_tracks, unmatched_dets

        # Step 2: cascade over confirmed tracks (all tracks on stale motion,
        # e.g. after a shot cut, where tentative ones get a chance too).
        cascade_tracks = [i for i, t in enumerate(tracks) if t.is_confirmed() or t.motion_stale]
        matches_a, unmatched_a, unmatched_dets = matching_cascade(
            self._appearance_cost(features, gate=True),
            self.max_cosine_distance,
            self.max_age,
            tracks,
            detections,
            cascade_tracks,
        )
        # Step 3: IoU for tentative tracks and tracks matched on the previous update.
        candidates = [
            i
            for i, t in enumerate(tracks)
            if not t.motion_stale and (t.is_tentative() or (i in unmatched_a and t.time_since_update <= step))
        ]
        matches_b, _, unmatched_dets = min_cost_matching(
            self._iou_cost(features), self.max_iou_distance, tracks, detections, candidates, unmatched_dets
        )
        # Step 3b: a tentative track IoU could not follow (a face moving more
        # than about half its width per frame: its single-box Kalman state has
        # no velocity yet) takes a confident detection by appearance alone, at
        # the strict re-id distance.
        matched_b = {k for k, _ in matches_b}
        tentative = [i for i in candidates if tracks[i].is_tentative() and i not in matched_b]
        confident = [d for d in unmatched_dets if detections.confidence[d] >= self.reid_min_confidence]
        matches_c = []
        if tentative and confident:
            matches_c, _, left = min_cost_matching(
                self._appearance_cost(features, gate=False),
                self.reid_max_cosine_distance,
                tracks,
                detections,
                tentative,
                confident,
            )
            unmatched_dets = [d for d in unmatched_dets if d not in confident] + left
        matches = matches_a + matches_b + matches_c
        matched = {k for k, _ in matches}
        unmatched_tracks = [i for i in range(len(tracks)) if i not in matched]
        return matches, unmatched_tracks, unmatched_dets

    def _merge_young(self, young: List[Track]) -> None:
        """Give a young track the id of the lost or missing track it is.

        A re-entering face whose first detection missed
        ``reid_max_cosine_distance`` (often a face half in the frame, or a
        new shot's different photo) starts a tentative track, and its later
        detections go to that track by IoU, never to the lost buffer. So every
        update of a confirmed track younger than ``reid_window`` frames
        compares all its features with the lost tracks and with the confirmed
        tracks not matched this frame (smallest nearest-neighbour distance
        over its features); matched pairs (Hungarian, up to
        ``reid_max_cosine_distance``) continue under the old id, which takes
        over the young track (the young id is reported in ``ended_ids``).
        """
        feats = {id(t): self._young_track_features(t) for t in young}
        young = [t for t in young if feats[id(t)]]
        if not young:
            return
        candidates = self.absent_tracks()
        if not candidates:
            return
        targets = [t.track_id for t in candidates]
        # One product for all young tracks' features (the candidates' samples
        # are stacked once), then the nearest feature per young track.
        counts = [len(feats[id(t)]) for t in young]
        pairwise = self.metric.distance(np.concatenate([np.stack(feats[id(t)]) for t in young]), targets)
        cost = np.minimum.reduceat(pairwise, np.cumsum([0] + counts[:-1]), axis=1).T
        cost[~np.isfinite(cost) | (cost > self.reid_max_cosine_distance)] = INFTY_COST
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] < INFTY_COST:
                self._continue_as(young[r], candidates[c], feats[id(young[r])])

    def _continue_as(self, track: Track, old: Track, features: List[np.ndarray]) -> None:
        """``track`` goes on under ``old``'s id; ``old`` (lost or missing) is gone."""
        self._young_features.pop(track.track_id, None)
        self.ended_ids.append(track.track_id)
        if old.is_lost():
            del self._lost[old.track_id]
            self._lost_since.pop(old.track_id, None)
        else:
            self.tracks = [t for t in self.tracks if t is not old]
        old.state = TrackState.DELETED
        logger.debug("young track %d is track %d", track.track_id, old.track_id)
        track.track_id = old.track_id
        track.state = TrackState.CONFIRMED
        track.held = False
        track.age = old.age
        track.hits = old.hits + track.hits
        track.revived = True
        self.revived_ids.append(track.track_id)
        # Queue its features under the old id; the young id's samples are
        # dropped by the metric since that id is no longer active.
        track.pending_features = list(features) or list(track.pending_features)

    def reidentify_as(self, track_id: int, old_id: int) -> bool:
        """Hand a held track the id of a lost or missing track on outside evidence.

        The pipeline calls it when the gallery names a held track (see
        ``hold_cosine_distance``; never shown yet) after the same person as a
        lost track, or a confirmed one not matched on the last update: another
        photo of someone can stay beyond ``reid_max_cosine_distance`` of their
        old track even in a clear view, while the gallery, with several photos
        per person, still knows them. Call it right after :meth:`update`; it
        updates ``revived_ids`` and ``ended_ids`` of that update.

        Returns
        -------
        bool
            False (and nothing changes) unless ``track_id`` is a held track
            matched on the last update and ``old_id`` a lost track or a
            confirmed one not matched on it.
        """
        track = next((t for t in self.tracks if t.track_id == track_id), None)
        if track is None or not track.held or not track.is_tentative() or track.time_since_update != 0:
            return False
        old = self._lost.get(old_id) or next(
            (t for t in self.tracks if t.track_id == old_id and t.is_confirmed() and t.time_since_update > 0), None
        )
        if old is None:
            return False
        # This update's features were already handed to the metric under the
        # held id; keep the young ones for the old id.
        features = self._young_features.get(track.track_id, [])
        self._continue_as(track, old, [])
        if features:
            targets = np.full(len(features), track.track_id)
            active = [t.track_id for t in self.tracks] + list(self._lost)
            self.metric.partial_fit(np.stack(features), targets, active)
        return True

    def _hold_undecided(self, confirmed: List[Track]) -> None:
        """Keep a track that reached ``n_init`` this update tentative while it may still be a lost one.

        ``confirmed`` are the tracks confirmed this update and not handed an
        old id by :meth:`_merge_young`. Such a track is *undecided* when a lost
        or missing track exists and either none of its detections was
        confident enough to compare (``reid_min_confidence``) or its nearest
        feature is within ``hold_cosine_distance`` of one (but not within
        ``reid_max_cosine_distance``, or it would have been merged). An
        undecided track goes back to tentative (``held``): it is not shown,
        and the next update that matches it confirms and checks it again, so
        the clearer view that re-identifies it arrives before a new id was
        ever shown. After ``hold_max_hits`` hits it is confirmed as a new face.
        """
        if self.hold_cosine_distance <= 0 or not self.reid_window or not confirmed:
            return  # without young-track re-identification a held track could never take an old id
        targets = [t.track_id for t in self.absent_tracks() if self.metric.has_samples(t.track_id)]
        for track in confirmed:
            undecided = False
            if targets and track.hits < self.hold_max_hits:
                features = self._young_track_features(track)
                if not features:
                    undecided = True
                else:
                    nearest = float(self.metric.distance(np.stack(features), targets).min())
                    undecided = nearest <= self.hold_cosine_distance
            track.held = undecided
            if undecided:
                track.state = TrackState.TENTATIVE

    def _young_track_features(self, track: Track) -> List[np.ndarray]:
        """The confident features a young track has collected so far, this update's included."""
        return self._young_features.get(track.track_id, []) + self._confident(track)

    def _confident(self, track: Track) -> List[np.ndarray]:
        """The track's pending features if its detection is confident enough for re-id."""
        confidence = track.confidence if track.confidence is not None else 1.0
        return list(track.pending_features) if confidence >= self.reid_min_confidence else []

    def _reidentify(self, detections, measurements, features, unmatched_dets, step: int = 1) -> List[int]:
        """Match leftover detections to lost tracks and long-missing confirmed ones."""
        if features is None or not unmatched_dets:
            return unmatched_dets
        weak = [d for d in unmatched_dets if detections.confidence[d] < self.reid_min_confidence]
        if weak:
            # Low-confidence detections (faces half out of the frame or occluded)
            # give unreliable embeddings: they start tracks, never revive ids.
            return weak + self._reidentify(
                detections, measurements, features, [d for d in unmatched_dets if d not in weak], step
            )
        candidates = self.absent_tracks()
        if not candidates:
            return unmatched_dets
        matches, _, unmatched_dets = min_cost_matching(
            self._appearance_cost(features, gate=False),
            self.reid_max_cosine_distance,
            candidates,
            detections,
            None,
            unmatched_dets,
        )
        for ti, di in matches:
            track = candidates[ti]
            if track.is_lost():
                del self._lost[track.track_id]
                self._lost_since.pop(track.track_id, None)
                track.state = TrackState.CONFIRMED
                track.revived = True
                self.tracks.append(track)
                self.revived_ids.append(track.track_id)
                logger.debug("track %d revived from the lost buffer", track.track_id)
            self._apply_match(track, detections, measurements, features, di, reinitiate=True)
        return unmatched_dets

    def _apply_match(self, track, detections, measurements, features, di, reinitiate=False) -> None:
        track.update(
            self.kf,
            measurements[di],
            detections.det_index[di],
            feature=None if features is None else features[di],
            confidence=detections.confidence[di],
            reinitiate=reinitiate,
        )

    def _start_track(self, detections, measurements, features, di) -> None:
        mean, covariance = self.kf.initiate(measurements[di])
        self.tracks.append(
            Track(
                mean,
                covariance,
                self.id_counter.next_id(),
                self.n_init,
                self.max_age,
                det_index=detections.det_index[di],
                feature=None if features is None else features[di],
                confidence=detections.confidence[di],
            )
        )

    def _to_lost(self, track: Track) -> None:
        keep = (
            self.lost_buffer_size > 0
            and self.lost_max_age > 0
            and (self.metric.has_samples(track.track_id) or bool(track.pending_features))
        )
        if not keep:
            track.state = TrackState.DELETED
            self.ended_ids.append(track.track_id)
            return
        track.state = TrackState.LOST
        track.det_index = None
        self._lost[track.track_id] = track
        self._lost_since[track.track_id] = self.frame_count
        self.lost_ids.append(track.track_id)

    def _expire_lost(self) -> None:
        expired = [
            tid for tid, since in self._lost_since.items() if self.frame_count - since >= self.lost_max_age
        ]
        while len(self._lost) - len(expired) > self.lost_buffer_size:
            oldest = next(tid for tid in self._lost if tid not in expired)
            expired.append(oldest)
        for tid in expired:
            track = self._lost.pop(tid)
            self._lost_since.pop(tid, None)
            track.state = TrackState.DELETED
            self.ended_ids.append(tid)
        if expired:
            gone = set(expired)
            self.lost_ids = [tid for tid in self.lost_ids if tid not in gone]

    def _fit_metric(self) -> None:
        features, targets = [], []
        young = {}
        for track in self.tracks:
            if track.age <= self.reid_window:
                young[track.track_id] = self._young_track_features(track)
            if track.pending_features:
                features += track.pending_features
                targets += [track.track_id] * len(track.pending_features)
                track.pending_features = []
        self._young_features = young
        active = [t.track_id for t in self.tracks] + list(self._lost)
        if features:
            self.metric.partial_fit(np.stack(features), np.asarray(targets), active)
        else:
            self.metric.partial_fit(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), active)
