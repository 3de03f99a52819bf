"""The per-frame pipeline and the run loop that feeds it from a source to sinks.

:class:`Pipeline` composes the parts, each passed in already built::

    detector -> embedder -> tracker -> identifier

with a shot-cut detector calling the tracker's cut mode. ``process(frame,
frame_index, timestamp)`` returns a :class:`FrameResult` with per-track boxes,
ids, names and scores, and per-stage timings; the evaluation benchmark calls
it directly. :func:`run` reads a :class:`~pipeline.sources.Source`, draws with
an :class:`~pipeline.overlay.Overlay`, writes to sinks, events and tracks
files, and ends cleanly on Ctrl-C.

Scheduling (keywords of :class:`Pipeline`)
-----------------------------------------
* ``detect_interval = k``: the detector runs on every k-th frame (and on every
  shot cut); while a track is young (tentative, or embedded fewer than
  ``settled_observations`` times) it runs every ``warmup_detect_interval``
  frames instead, so new faces are confirmed and named as fast as in the
  every-frame mode; so it does while a shown face moves faster than
  ``fast_motion_fraction`` of its width per interval. In between, the tracker is **not** updated (so a track is never
  penalised for a frame nobody looked at). On a detection frame a track
  matched on it is shown with its detection's box (the Kalman box lags
  behind faces sliding in at the frame edge); in between, the boxes shown are
  extrapolated with each track's velocity measured between its last two
  detections. A
  tracker whose ``update`` takes ``elapsed_frames`` (:class:`tracker.Tracker`)
  is told how many frames passed, so its Kalman motion and its ages count
  frames whatever the interval (counting updates made the velocity's unit
  change between the warm-up interval and the interval: 49 -> 20 ID switches
  on the seed-0 simulator sequence).
* ``embed_policy = "all"`` embeds every detection on every detection frame
  (the baseline). ``"needed"`` embeds only detections that cannot reuse the
  last embedding of the track they overlap: a detection reuses it when it is
  the mutual best IoU match (>= ``reuse_iou_threshold``) of a track predicted
  into this frame, overlaps no other predicted track (and the track no other
  detection: at a crossing the borrowed embedding could be the other
  person's), that track has been embedded at least
  ``settled_observations`` times, and its last embedding is younger than
  ``embed_refresh_interval`` frames. The tracker still receives an
  embedding for every detection (fresh or reused), so its appearance cascade
  keeps working; the identifier receives only the fresh ones, so no piece of
  evidence is counted twice.
* ``max_faces_per_frame`` bounds the embedder's work on crowded frames: the
  detections most in need (new tracks first, then the stalest) are embedded,
  the rest reuse the last embedding of their track when they have one.
"""
from __future__ import annotations

import inspect
import logging
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from tracker.boxes import clip_xyxy, iou_matrix
from tracker.detections import Detections

logger = logging.getLogger(__name__)

#: Stages timed inside :meth:`Pipeline.process`.
PROCESS_STAGES = ("scene_cut", "detect", "embed", "track", "identify")
#: Stages timed by :func:`run` around it: ``decode`` is the source's decoding
#: thread, ``wait`` the loop blocked on the source, ``encode`` the loop handing
#: frames to the sinks, ``encode_busy`` background sink threads encoding.
RUN_STAGES = ("decode", "wait", "draw", "encode", "encode_busy")
EMBED_POLICIES = ("all", "needed")
#: The FPS readout is the rate over this many most recent frames.
FPS_WINDOW_FRAMES = 30


@dataclass
class FrameResult:
    """What the pipeline knows about one frame.

    Attributes
    ----------
    frame_index : int
    timestamp : float
        Seconds since the start of the source.
    track_ids : ndarray
        ``(N,)`` int64 ids of the confirmed tracks shown on this frame.
    xyxy : ndarray
        ``(N, 4)`` float32 boxes in pixels of the frame, clipped to it.
    confidence : ndarray
        ``(N,)`` float32 detector confidence of each track's last matched detection.
    names : list of (str or None)
        ``N`` names; None = Unknown (or no gallery).
    scores : ndarray
        ``(N,)`` float32 cosine similarity behind each name (to the closest
        enrolled person when Unknown; NaN without an identifier).
    predicted : ndarray
        ``(N,)`` bool: the box is a motion prediction (no detection ran on this frame).
    detected : bool
        The detector ran on this frame.
    scene_cut : bool
        The frame was treated as the first of a new shot.
    num_detections, num_embedded : int
        Faces the detector found, and faces the embedder processed, on this frame.
    detections : Detections or None
        The detector's output (with embeddings), None on frames without detection.
    lost_ids, ended_ids : list of int
        The tracker's ``lost_ids`` / ``ended_ids`` after this frame's update (empty
        on frames without detection).
    timings : dict
        Seconds spent in each of :data:`PROCESS_STAGES` (run adds :data:`RUN_STAGES`).
    """

    frame_index: int
    timestamp: float
    track_ids: np.ndarray
    xyxy: np.ndarray
    confidence: np.ndarray
    names: List[Optional[str]]
    scores: np.ndarray
    predicted: np.ndarray
    detected: bool = False
    scene_cut: bool = False
    num_detections: int = 0
    num_embedded: int = 0
    detections: Optional[Detections] = None
    lost_ids: List[int] = field(default_factory=list)
    ended_ids: List[int] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass
class _TrackMemo:
    """What the pipeline remembers of a confirmed track between detection frames."""

    box: np.ndarray                      # (4,) xyxy shown at `frame` (the matched detection's box)
    frame: int
    velocity: np.ndarray                 # (4,) xyxy change per frame of the shown box
    confidence: float
    track_box: np.ndarray                # (4,) xyxy of the tracker's state at `frame`
    track_velocity: np.ndarray           # (4,) xyxy change per frame of the tracker's box
    embedding: Optional[np.ndarray] = None
    embedded_frame: int = -1
    embed_count: int = 0


class Pipeline:
    """Detect, embed, track and identify faces frame by frame.

    Parameters
    ----------
    detector : object
        ``detect(frame_bgr) -> Detections`` (``models.detector.FaceDetector``).
    embedder : object or None
        ``embed(frame_bgr, detections) -> (N, D)`` (``models.embedder.FaceEmbedder``);
        None tracks by motion only and names nobody.
    tracker : object
        ``update(detections, scene_cut=False) -> tracks`` with ``lost_ids`` and
        ``ended_ids`` (``tracker.Tracker``).
    identifier : object or None
        ``update(tracks, detections, quality)``, ``forget(ids)``, ``get(id)``
        (``gallery.identifier.Identifier``); None names nobody.
    scene_cut_detector : object or None
        ``update(frame_bgr) -> bool`` and ``reset()``
        (:class:`~pipeline.scene_cut.HistogramSceneCutDetector`).
    quality_fn : callable or None
        ``quality_fn(frame_bgr, detections)`` -> object with an ``(N,)``
        ``score`` (``models.quality.face_quality``), the identifier's evidence weight.
    detect_interval : int
        Run the detector on every k-th frame (>= 1; 1 = every frame).
    warmup_detect_interval : int
        The detector interval while any track is young (tentative or not yet
        settled), in ``[1, detect_interval]``.
    embed_policy : {"all", "needed"}
        Embed every detection, or only those that need it (see the module doc).
    embed_refresh_interval : int
        With ``"needed"``: a track's embedding is refreshed when older than
        this many frames (>= 1).
    settled_observations : int
        With ``"needed"``: embeddings a track must have had before its last one
        may be reused (>= 1).
    reuse_iou_threshold : float
        With ``"needed"``: IoU between a detection and a track's predicted box
        needed to reuse the track's embedding, in ``(0, 1]``.
    max_faces_per_frame : int
        Most faces embedded on one frame (0 = no limit).
    fast_motion_fraction : float
        Detect at ``warmup_detect_interval`` while a shown face moves more than
        this fraction of its width per ``detect_interval`` frames (the boxes
        extrapolated in between would leave it); 0 disables, ``>= 0``.
    reidentify_by_name : bool
        Hand a held track (see ``tracker.Tracker``'s ``hold_cosine_distance``)
        the id of the one lost or missing track the gallery gives the same
        name (needs a tracker with ``reidentify_as`` and an identifier).
    """

    def __init__(
        self,
        detector,
        embedder,
        tracker,
        identifier=None,
        scene_cut_detector=None,
        *,
        quality_fn: Optional[Callable] = None,
        detect_interval: int = 1,
        warmup_detect_interval: int = 1,
        embed_policy: str = "all",
        embed_refresh_interval: int = 10,
        settled_observations: int = 3,
        reuse_iou_threshold: float = 0.5,
        max_faces_per_frame: int = 0,
        fast_motion_fraction: float = 0.0,
        reidentify_by_name: bool = True,
    ) -> None:
        if detector is None or not hasattr(detector, "detect"):
            raise ValueError("detector must have a detect(frame) method")
        if tracker is None or not hasattr(tracker, "update"):
            raise ValueError("tracker must have an update(detections, scene_cut) method")
        if int(detect_interval) != detect_interval or int(detect_interval) < 1:
            raise ValueError(f"detect_interval must be an integer >= 1, got {detect_interval!r}")
        if (int(warmup_detect_interval) != warmup_detect_interval or int(warmup_detect_interval) < 1
                or int(warmup_detect_interval) > int(detect_interval)):
            raise ValueError(f"warmup_detect_interval must be an integer in [1, detect_interval], "
                             f"got {warmup_detect_interval!r}")
        if embed_policy not in EMBED_POLICIES:
            raise ValueError(f"embed_policy must be one of {EMBED_POLICIES}, got {embed_policy!r}")
        if int(embed_refresh_interval) != embed_refresh_interval or int(embed_refresh_interval) < 1:
            raise ValueError(f"embed_refresh_interval must be an integer >= 1, got {embed_refresh_interval!r}")
        if int(settled_observations) != settled_observations or int(settled_observations) < 1:
            raise ValueError(f"settled_observations must be an integer >= 1, got {settled_observations!r}")
        if not 0.0 < float(reuse_iou_threshold) <= 1.0:
            raise ValueError(f"reuse_iou_threshold must be in (0, 1], got {reuse_iou_threshold!r}")
        if int(max_faces_per_frame) != max_faces_per_frame or int(max_faces_per_frame) < 0:
            raise ValueError(f"max_faces_per_frame must be an integer >= 0, got {max_faces_per_frame!r}")
        if (isinstance(fast_motion_fraction, bool) or not isinstance(fast_motion_fraction, (int, float, np.number))
                or not float(fast_motion_fraction) >= 0.0):
            raise ValueError(f"fast_motion_fraction must be a number >= 0, got {fast_motion_fraction!r}")
        if not isinstance(reidentify_by_name, (bool, np.bool_)):
            raise ValueError(f"reidentify_by_name must be a bool, got {reidentify_by_name!r}")
        self.detector = detector
        self.embedder = embedder
        self.tracker = tracker
        self.identifier = identifier
        self.scene_cut_detector = scene_cut_detector
        self.quality_fn = quality_fn
        self.detect_interval = int(detect_interval)
        self.warmup_detect_interval = int(warmup_detect_interval)
        self.embed_policy = embed_policy
        self.embed_refresh_interval = int(embed_refresh_interval)
        self.settled_observations = int(settled_observations)
        self.reuse_iou_threshold = float(reuse_iou_threshold)
        self.max_faces_per_frame = int(max_faces_per_frame)
        self.fast_motion_fraction = float(fast_motion_fraction)
        self.reidentify_by_name = bool(reidentify_by_name)
        # A tracker whose update() takes elapsed_frames (tracker.Tracker) is told how
        # many frames passed since its last update, so its motion model and ages
        # count frames while the detector runs every k-th frame.
        try:
            self._tracker_counts_frames = "elapsed_frames" in inspect.signature(tracker.update).parameters
        except (TypeError, ValueError):
            self._tracker_counts_frames = False
        self._memo: Dict[int, _TrackMemo] = {}
        self._shown: List[int] = []          # confirmed tracks matched on the last detection frame
        self._last_detect_frame: Optional[int] = None
        self._warming_up = False            # a young track exists: detect at warmup_detect_interval

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every track (a new source); the tracker and identifier are reset too."""
        if hasattr(self.tracker, "reset"):
            self.tracker.reset()
        if self.identifier is not None and hasattr(self.identifier, "reset"):
            self.identifier.reset()
        if self.scene_cut_detector is not None:
            self.scene_cut_detector.reset()
        self._memo.clear()
        self._shown = []
        self._last_detect_frame = None
        self._warming_up = False

    # -------------------------------------------------------------- per frame
    def process(self, frame: np.ndarray, frame_index: int, timestamp: float = 0.0, *,
                scene_cut: Optional[bool] = None) -> FrameResult:
        """Run the pipeline on one frame.

        Parameters
        ----------
        frame : ndarray
            An ``(H, W, 3)`` uint8 BGR frame.
        frame_index : int
            Its index in the source (increasing; gaps allowed for live sources).
        timestamp : float
            Seconds since the start of the source.
        scene_cut : bool or None
            Force (True) or forbid (False) cut mode on this frame; None asks the
            shot-cut detector.

        Returns
        -------
        FrameResult
        """
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an (H, W, 3) BGR array, got {getattr(frame, 'shape', type(frame))}")
        timings = {stage: 0.0 for stage in PROCESS_STAGES}
        height, width = frame.shape[:2]

        # Step 1: shot cut? (cheap; runs on every frame so no cut is missed)
        t0 = time.perf_counter()
        cut = False
        if self.scene_cut_detector is not None:
            detected_cut = bool(self.scene_cut_detector.update(frame))
            cut = detected_cut if scene_cut is None else bool(scene_cut)
        elif scene_cut:
            cut = True
        timings["scene_cut"] = time.perf_counter() - t0

        interval = self.warmup_detect_interval if self._warming_up else self.detect_interval
        due = (self._last_detect_frame is None
               or frame_index - self._last_detect_frame >= interval
               or frame_index < self._last_detect_frame)
        if not (due or cut):
            return self._predicted_result(frame_index, timestamp, width, height, timings)

        # Step 2: detect.
        t0 = time.perf_counter()
        detections = self.detector.detect(frame)
        timings["detect"] = time.perf_counter() - t0
        previous, self._last_detect_frame = self._last_detect_frame, frame_index

        # Step 3: embed what is needed (all of it in the baseline or on cuts).
        t0 = time.perf_counter()
        detections, fresh_rows, quality, complete = self._embed(frame, frame_index, detections, cut)
        timings["embed"] = time.perf_counter() - t0
        # The tracker needs an embedding for every detection or none; the fresh
        # ones of an incomplete set still feed the identifier and the memos.
        tracker_input = detections if complete else detections.with_embedding(None)

        # Step 4: track (cut mode on shot cuts).
        t0 = time.perf_counter()
        if self._tracker_counts_frames:
            elapsed = 1 if previous is None or frame_index <= previous else frame_index - previous
            tracks = self.tracker.update(tracker_input, scene_cut=cut, elapsed_frames=elapsed)
        else:
            tracks = self.tracker.update(tracker_input, scene_cut=cut)
        lost_ids = [int(i) for i in getattr(self.tracker, "lost_ids", [])]
        ended_ids = [int(i) for i in getattr(self.tracker, "ended_ids", [])]
        timings["track"] = time.perf_counter() - t0

        # Step 5: identify, from fresh embeddings only.
        t0 = time.perf_counter()
        if self.identifier is not None:
            if detections.embedding is not None and fresh_rows.any():
                fresh_det = set(int(d) for d in detections.det_index[fresh_rows])
                evidence = [t for t in tracks if t.det_index is not None and int(t.det_index) in fresh_det]
                if evidence:
                    self.identifier.update(evidence, detections, quality)
            if self.reidentify_by_name and self._reidentify_by_name(tracks):
                tracks = list(self.tracker.tracks)
                ended_ids = [int(i) for i in getattr(self.tracker, "ended_ids", [])]
            if ended_ids:
                self.identifier.forget(ended_ids)
        timings["identify"] = time.perf_counter() - t0

        result = self._detected_result(frame_index, timestamp, width, height, detections, fresh_rows,
                                       tracks, lost_ids, ended_ids, cut, timings)
        return result

    # ---------------------------------------------------------------- helpers
    def _predict_boxes(self, track_ids: Sequence[int], frame_index: int, *, tracker_boxes: bool = False) -> np.ndarray:
        """``(N, 4)`` xyxy boxes extrapolated to ``frame_index``: the shown
        boxes (default), or the tracker's boxes (``tracker_boxes``, used to
        decide embedding reuse)."""
        if not track_ids:
            return np.zeros((0, 4), np.float32)
        boxes = []
        for tid in track_ids:
            memo = self._memo[tid]
            if tracker_boxes:
                boxes.append(memo.track_box + memo.track_velocity * (frame_index - memo.frame))
            else:
                boxes.append(memo.box + memo.velocity * (frame_index - memo.frame))
        return np.asarray(boxes, np.float32)

    def _embed(self, frame, frame_index, detections: Detections, cut: bool):
        n = len(detections)
        fresh = np.zeros(n, bool)
        if self.embedder is None or n == 0:
            return detections, fresh, None, detections.embedding is not None
        need = np.ones(n, bool)
        reuse_from: Dict[int, int] = {}
        if self.embed_policy == "needed" and not cut and self._shown:
            ids = [t for t in self._shown if self._memo[t].embedding is not None]
            if ids:
                iou = iou_matrix(detections.xyxy, self._predict_boxes(ids, frame_index, tracker_boxes=True))
                best_track = iou.argmax(axis=1)
                best_det = iou.argmax(axis=0)
                for r in range(n):
                    k = int(best_track[r])
                    if iou[r, k] < self.reuse_iou_threshold or int(best_det[k]) != r:
                        continue
                    if (iou[r] > 0).sum() > 1 or (iou[:, k] > 0).sum() > 1:
                        # Ambiguous: the face overlaps another track or the track another
                        # face (a crossing). Borrowing would hand one person's embedding
                        # to the other and let the tracker swap them: embed it afresh.
                        continue
                    memo = self._memo[ids[k]]
                    reuse_from[r] = ids[k]
                    settled = memo.embed_count >= self.settled_observations
                    fresh_enough = frame_index - memo.embedded_frame < self.embed_refresh_interval
                    if settled and fresh_enough:
                        need[r] = False
        if self.max_faces_per_frame and need.sum() > self.max_faces_per_frame:
            # New faces first (no track to borrow from), then the stalest embeddings.
            rows = np.flatnonzero(need)
            age = np.array([np.inf if r not in reuse_from else
                            frame_index - self._memo[reuse_from[r]].embedded_frame for r in rows])
            keep = rows[np.argsort(-age, kind="stable")[: self.max_faces_per_frame]]
            need[:] = False
            need[keep] = True
        embedding: Optional[np.ndarray] = None
        quality = None
        rows = np.flatnonzero(need)
        if len(rows):
            subset = detections[rows]
            vectors = np.asarray(self.embedder.embed(frame, subset), np.float32)
            if self.quality_fn is not None:
                q = np.asarray(getattr(self.quality_fn(frame, subset), "score"), np.float64).reshape(-1)
                quality = np.zeros(n, np.float64)
                quality[rows] = q
            embedding = np.zeros((n, vectors.shape[1]), np.float32)
            embedding[rows] = vectors
            fresh[rows] = True
        missing = [r for r in range(n) if not need[r]]
        # Complete when every detection has a fresh or a borrowed embedding; with
        # max_faces_per_frame some may have neither, and the tracker then tracks
        # this frame by motion only (the fresh rows still count as evidence).
        complete = all(r in reuse_from for r in missing)
        borrowed = [r for r in missing if r in reuse_from]
        if borrowed:
            cached = {r: self._memo[reuse_from[r]].embedding for r in borrowed}
            if embedding is None:
                embedding = np.zeros((n, len(next(iter(cached.values())))), np.float32)
            for r, vec in cached.items():
                embedding[r] = vec
        if embedding is None:
            return detections, fresh, None, False
        return detections.with_embedding(embedding), fresh, quality, complete

    def _moving_fast(self, shown: Sequence[int]) -> bool:
        """Some shown face moves more than ``fast_motion_fraction`` of its width per detection interval."""
        if self.fast_motion_fraction <= 0 or self.detect_interval == 1:
            return False
        for tid in shown:
            memo = self._memo[tid]
            width = float(memo.box[2] - memo.box[0])
            step = float(np.abs(memo.velocity[[0, 2]]).max()) * self.detect_interval
            if step > self.fast_motion_fraction * max(width, 1.0):
                return True
        return False

    def _reidentify_by_name(self, tracks) -> bool:
        """Hand each held track the id of the one lost or missing track the gallery names alike.

        A held track (``track.held``: it reached ``n_init`` but may still be
        a lost track, see ``tracker.Tracker``) is never shown; the identifier
        gathers its evidence like a confirmed track's. Another photo of a
        person can stay beyond the tracker's re-id distance from their old
        track even in a clear view; the gallery, with its several photos per
        person, still knows them. Returns whether any track was handed an id.
        """
        held = [t for t in tracks if getattr(t, "held", False) and t.time_since_update == 0]
        if not held or not all(hasattr(self.tracker, m) for m in ("reidentify_as", "absent_tracks")):
            return False
        by_name = {}
        for t in self.tracker.absent_tracks():
            name = self.identifier.get(int(t.track_id)).name
            if name is not None:
                by_name.setdefault(name, []).append(int(t.track_id))
        merged = False
        for t in held:
            name = self.identifier.get(int(t.track_id)).name
            olds = by_name.get(name, []) if name is not None else []
            if len(olds) == 1 and self.tracker.reidentify_as(int(t.track_id), olds[0]):
                by_name.pop(name)
                merged = True
        return merged

    def _identity(self, track_id: int):
        if self.identifier is None:
            return None, float("nan")
        identity = self.identifier.get(track_id)
        return identity.name, float(identity.score)

    def _detected_result(self, frame_index, timestamp, width, height, detections, fresh_rows, tracks,
                         lost_ids, ended_ids, cut, timings) -> FrameResult:
        rows_of = {int(d): r for r, d in enumerate(detections.det_index)}
        for tid in set(lost_ids) | set(ended_ids):
            self._memo.pop(tid, None)
        shown, boxes, confs, names, scores = [], [], [], [], []
        for track in tracks:
            if not track.is_confirmed() or track.time_since_update != 0:
                continue
            tid = int(track.track_id)
            track_box = np.asarray(track.to_xyxy(), np.float32).reshape(4)
            row = rows_of.get(int(track.det_index)) if track.det_index is not None else None
            conf = float(detections.confidence[row]) if row is not None else float("nan")
            # Show the matched detection's box: the Kalman state lags behind a
            # face whose box changes shape quickly (sliding in at the frame
            # edge: detection IoU 0.96 with the face, Kalman box 0.46 on seed 0).
            # The tracker's box still decides embedding reuse.
            box = np.asarray(detections.xyxy[row], np.float32).reshape(4) if row is not None else track_box
            memo = self._memo.get(tid)
            if memo is None or getattr(track, "revived", False) or cut:
                memo = self._memo[tid] = _TrackMemo(box, frame_index, np.zeros(4, np.float32), conf,
                                                    track_box=track_box, track_velocity=np.zeros(4, np.float32),
                                                    embedding=None if memo is None else memo.embedding,
                                                    embedded_frame=-1 if memo is None else memo.embedded_frame,
                                                    embed_count=0 if memo is None else memo.embed_count)
            else:
                gap = frame_index - memo.frame
                if gap > 0:
                    memo.velocity = ((box - memo.box) / gap).astype(np.float32)
                    memo.track_velocity = ((track_box - memo.track_box) / gap).astype(np.float32)
                memo.box, memo.frame, memo.confidence = box, frame_index, conf
                memo.track_box = track_box
            if row is not None and fresh_rows[row]:
                memo.embedding = detections.embedding[row].copy()
                memo.embedded_frame = frame_index
                memo.embed_count += 1
            name, score = self._identity(tid)
            shown.append(tid)
            boxes.append(box)
            confs.append(conf)
            names.append(name)
            scores.append(score)
        # Forget memos of tracks the tracker no longer has.
        alive = {int(t.track_id) for t in tracks}
        for tid in list(self._memo):
            if tid not in alive:
                del self._memo[tid]
        self._shown = shown
        self._warming_up = (
            any(t.is_tentative() for t in tracks)
            or any(self._memo[t].embed_count < self.settled_observations for t in shown if self.embedder is not None)
            or self._moving_fast(shown))
        xyxy = clip_xyxy(np.asarray(boxes, np.float32).reshape(-1, 4), width, height).astype(np.float32)
        return FrameResult(
            frame_index=frame_index, timestamp=float(timestamp),
            track_ids=np.asarray(shown, np.int64), xyxy=xyxy,
            confidence=np.asarray(confs, np.float32), names=names,
            scores=np.asarray(scores, np.float32), predicted=np.zeros(len(shown), bool),
            detected=True, scene_cut=cut, num_detections=len(detections),
            num_embedded=int(fresh_rows.sum()), detections=detections,
            lost_ids=lost_ids, ended_ids=ended_ids, timings=timings,
        )

    def _predicted_result(self, frame_index, timestamp, width, height, timings) -> FrameResult:
        ids = list(self._shown)
        xyxy = clip_xyxy(self._predict_boxes(ids, frame_index), width, height).astype(np.float32)
        names, scores = [], []
        for tid in ids:
            name, score = self._identity(tid)
            names.append(name)
            scores.append(score)
        return FrameResult(
            frame_index=frame_index, timestamp=float(timestamp),
            track_ids=np.asarray(ids, np.int64), xyxy=xyxy,
            confidence=np.asarray([self._memo[t].confidence for t in ids], np.float32),
            names=names, scores=np.asarray(scores, np.float32), predicted=np.ones(len(ids), bool),
            detected=False, scene_cut=False, timings=timings,
        )


# ---------------------------------------------------------------------- run loop
@dataclass
class RunSummary:
    """What a run did.

    Attributes
    ----------
    frames : int
        Frames processed.
    seconds : float
        Wall-clock time of the loop.
    interrupted : bool
        Stopped by Ctrl-C (SIGINT) or a sink (window closed).
    stage_seconds : dict
        Total seconds per stage (:data:`PROCESS_STAGES` and :data:`RUN_STAGES`).
    names_seen : list of str
        Everyone named at least once.
    appearances : int
        Appearances (see :mod:`pipeline.events`).
    track_ids : int
        Distinct confirmed track ids shown.
    detection_frames : int
        Frames on which the detector ran.
    faces_embedded : int
        Faces the embedder processed.
    dropped_frames, reconnects : int
        Live sources: frames skipped to stay current, and stream reconnections.
    """

    frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    stop_reason: str = ""
    stage_seconds: Dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in PROCESS_STAGES + RUN_STAGES})
    names_seen: List[str] = field(default_factory=list)
    appearances: int = 0
    track_ids: int = 0
    detection_frames: int = 0
    faces_embedded: int = 0
    dropped_frames: int = 0
    reconnects: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def stage_ms(self) -> Dict[str, float]:
        """Mean milliseconds per frame for each stage."""
        n = max(1, self.frames)
        return {k: 1000.0 * v / n for k, v in self.stage_seconds.items()}


class _StopFlag:
    """First Ctrl-C asks the loop to stop after the current frame; a second one raises."""

    def __init__(self, source) -> None:
        self.set = False
        self._source = source
        self._previous = None

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        logger.warning("stopping after this frame (Ctrl-C again to abort)")
        interrupt = getattr(self._source, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run(
    pipeline: Pipeline,
    source,
    sinks: Sequence = (),
    *,
    overlay=None,
    event_writer=None,
    tracks_writer=None,
    max_frames: Optional[int] = None,
    progress: bool = False,
    on_frame: Optional[Callable[[FrameResult], None]] = None,
) -> RunSummary:
    """Read ``source`` to the end (or ``max_frames``, or Ctrl-C) through ``pipeline``.

    Parameters
    ----------
    pipeline : Pipeline
    source : Source
        From :func:`pipeline.sources.open_source`.
    sinks : sequence of Sink
        Each gets the annotated frame; one returning False stops the run.
    overlay : Overlay or None
        Draws tracks and the FPS readout (only when there are sinks).
    event_writer : EventWriter or None
        Receives each appearance when it ends, and the open ones at the end.
    tracks_writer : TracksWriter or None
        Receives MOTChallenge rows for every frame.
    max_frames : int or None
        Stop after this many frames (>= 1).
    progress : bool
        Show a tqdm progress bar (with a total for files).
    on_frame : callable or None
        Called with every :class:`FrameResult` (after the sinks).

    Returns
    -------
    RunSummary
        The source, sinks and writers are closed when it returns, also after Ctrl-C or an error.
    """
    from pipeline.events import AppearanceLog  # local: events has no heavy imports, keeps the graph flat

    if max_frames is not None and int(max_frames) < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames!r}")
    summary = RunSummary()
    log = AppearanceLog()
    seen_ids: set = set()
    total = source.frame_count if not getattr(source, "is_live", False) else None
    if max_frames is not None:
        total = min(total, int(max_frames)) if total else int(max_frames)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit="frame", desc=str(getattr(source, "description", "source")),
                   dynamic_ncols=True)
    ticks: deque = deque(maxlen=FPS_WINDOW_FRAMES)
    fps_now: Optional[float] = None
    stage = summary.stage_seconds
    start = time.perf_counter()
    try:
        with _StopFlag(source) as stop:
            while not stop.set:
                if max_frames is not None and summary.frames >= max_frames:
                    summary.stop_reason = "max_frames"
                    break
                t0 = time.perf_counter()
                frame = source.read()
                stage["wait"] += time.perf_counter() - t0
                if frame is None:
                    summary.stop_reason = summary.stop_reason or ("interrupted" if stop.set else "end of source")
                    break
                stage["decode"] += frame.decode_seconds
                result = pipeline.process(frame.image, frame.index, frame.timestamp,
                                          scene_cut=True if frame.discontinuity else None)
                for k, v in result.timings.items():
                    stage[k] = stage.get(k, 0.0) + v
                summary.frames += 1
                summary.detection_frames += int(result.detected)
                summary.faces_embedded += result.num_embedded
                seen_ids.update(int(t) for t in result.track_ids)
                ended = log.update(result)
                if event_writer is not None and ended:
                    event_writer.write(ended)
                if tracks_writer is not None:
                    tracks_writer.write(result)

                # Frames per second over the last FPS_WINDOW_FRAMES frames (frames with
                # and without detection alternate, so one frame's rate means nothing).
                ticks.append(time.perf_counter())
                if len(ticks) >= 2 and ticks[-1] > ticks[0]:
                    fps_now = (len(ticks) - 1) / (ticks[-1] - ticks[0])
                if sinks:
                    t0 = time.perf_counter()
                    image = frame.image
                    if overlay is not None:
                        overlay.annotate(image, result)
                        overlay.draw_fps(image, fps_now)
                    stage["draw"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    keep_going = True
                    for sink in sinks:
                        keep_going = sink.write(image) is not False and keep_going
                    stage["encode"] += time.perf_counter() - t0
                    if not keep_going:
                        summary.stop_reason = "window closed"
                        summary.interrupted = True
                        break
                if on_frame is not None:
                    on_frame(result)
                if bar is not None:
                    bar.update(1)
            if stop.set:
                summary.interrupted = True
                summary.stop_reason = "interrupted"
    except KeyboardInterrupt:
        summary.interrupted = True
        summary.stop_reason = "interrupted"
    finally:
        summary.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        errors = []
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - close the others, report afterwards
                errors.append(exc)
            stage["encode_busy"] += float(getattr(sink, "busy_seconds", 0.0))
        finished = log.finish()
        if event_writer is not None:
            event_writer.write(finished)
            event_writer.close()
        if tracks_writer is not None:
            tracks_writer.close()
        source.close()
        summary.names_seen = sorted(log.names_seen)
        summary.appearances = log.appearances
        summary.track_ids = len(seen_ids)
        summary.dropped_frames = int(getattr(source, "dropped_frames", 0))
        summary.reconnects = int(getattr(source, "reconnects", 0))
        if errors:
            raise errors[0]
    return summary
