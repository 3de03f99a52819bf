"""The per-frame pipeline: detect, embed, track and identify, composed from its policies.

:class:`Pipeline` composes the parts, each passed in already built::

    detector -> embedder -> tracker -> identifier

with a shot-cut detector calling the tracker's cut mode, and four policies
of their own modules: when to detect, and when on the whole frame
(:class:`~pipeline.schedule.DetectionSchedule`), detection inside crops around
the tracks between full frames (:class:`~pipeline.crops.CropDetection`), which
faces to embed (:class:`~pipeline.reuse.EmbeddingReuse`) and which boxes to show
between detections (:class:`~pipeline.display.ShownBoxes`).
Name-based re-identification of held tracks runs inside the tracker's update
(:func:`~pipeline.naming.name_linker`). ``process(frame, frame_index,
timestamp)`` returns a :class:`~pipeline.results.FrameResult`; the run loop
that feeds it from a source to sinks is :func:`pipeline.loop.run`.

On frames without detection the tracker is not updated (a track is never
penalised for a frame nobody looked at); it is told how many frames passed
when it next runs, so its motion and ages count frames. The tracker receives
an embedding for every detection (fresh or borrowed) or none; the identifier
receives only the fresh ones, so no evidence is counted twice.

With ``crop_detection`` a detection frame that is not due a full-frame pass
looks only inside crops around the tracks matched on the last detection frame
(their predicted boxes); its faces go to the embedder, tracker and identifier
like any detection frame's, so a young track warms up on cheap crops. A track
its crop misses is looked for again on the next full frame, which is also
where new faces come from (and cuts, which are always full frames).
"""
from __future__ import annotations

import logging
import time
from typing import Callable, List, Optional

import numpy as np

from pipeline.crops import CropDetection
from pipeline.detect_at import detect_at, takes_keyword
from pipeline.display import ShownBoxes
from pipeline.linking import SceneLinking
from pipeline.naming import name_linker
from pipeline.results import PROCESS_STAGES, FrameResult, RunSummary  # noqa: F401  (RunSummary re-exported)
from pipeline.reuse import EMBED_POLICIES, EmbeddingReuse  # noqa: F401  (EMBED_POLICIES re-exported)
from pipeline.schedule import DetectionSchedule
from tracker.boxes import clip_xyxy
from tracker.checks import check_bool, check_int, check_number
from tracker.detections import Detections

logger = logging.getLogger(__name__)


class Pipeline:
    """Detect, embed, track and identify faces frame by frame.

    Parameters
    ----------
    detector : Detector
        ``detect(frame_bgr) -> Detections`` (:class:`models.detector.FaceDetector`).
    embedder : Embedder or None
        ``embed(frame_bgr, detections) -> (N, D)``; None tracks by motion only and names nobody.
    tracker : Tracker
        :class:`tracker.Tracker` (see :class:`pipeline.protocols.Tracker`).
    identifier : Identifier or None
        :class:`gallery.identifier.Identifier`; None names nobody.
    scene_cut_detector : SceneCutDetector or None
        ``update(frame_bgr) -> bool`` and ``reset()``.
    quality_fn : callable or None
        ``quality_fn(frame_bgr, detections)`` -> an object with an ``(N,)``
        ``score``: the identifier's evidence weight.
    detect_interval, warmup_detect_interval : int
        See :class:`~pipeline.schedule.DetectionSchedule`.
    embed_policy, embed_refresh_interval, settled_observations, reuse_iou_threshold, max_faces_per_frame
        See :class:`~pipeline.reuse.EmbeddingReuse`.
    fast_motion_fraction : float
        Detect at ``warmup_detect_interval`` while a shown face moves more than
        this fraction of its width per ``detect_interval`` frames; 0 disables, ``>= 0``.
    reidentify_by_name : bool
        Hand a held track the id of the one absent track the gallery names alike, and
        show at once a held track the gallery names somebody no absent track is named.
    scene_linking : SceneLinking or None
        Links the tracks of a scene into identities (:mod:`pipeline.linking`), so a
        name found by one track's face shows on the others; None (the default) names
        each track from its own face only.
    crop_detection : bool
        Between full-frame passes, detect inside crops around the tracks
        (:class:`~pipeline.crops.CropDetection`). It needs a detector with
        ``detect_crops(crops, input_size)`` and no ``fixed_input_size``; with
        any other every detection is a full frame (logged once at construction).
    full_frame_interval : int
        With ``crop_detection``: frames between full-frame passes (``>= 1``);
        see :class:`~pipeline.schedule.DetectionSchedule`.
    crop_input_size, crop_margin, crop_min_scale
        The crops' smallest detector input side (px, multiple of 32), window
        side in face sizes, and least scale as a fraction of the full frame's;
        see :class:`~pipeline.crops.CropDetection` (``input_size``, ``margin``, ``min_scale``).
    crop_tentative : bool
        Also look for tentative (young, not yet shown) tracks in crops, so they
        confirm without full frames; False looks only for confirmed tracks.
    large_frame_input_size : int
        Full frames whose long side is above ``large_frame_side`` are detected
        at this input side (a multiple of 32) instead of the detector's own
        ``input_size``, so the small faces of a wide shot (640x360 to 1080p) keep
        enough pixels; ``0`` detects every frame at the detector's size. It
        needs a detector whose ``detect`` takes ``input_size`` and no
        ``fixed_input_size`` (else off, logged once).
    large_frame_side : int
        See ``large_frame_input_size`` (px, ``>= 1``).
    """

    def __init__(self, detector, embedder, tracker, identifier=None, scene_cut_detector=None, *,
                 quality_fn: Optional[Callable] = None, detect_interval: int = 3, warmup_detect_interval: int = 1,
                 embed_policy: str = "needed", embed_refresh_interval: int = 10, settled_observations: int = 3,
                 reuse_iou_threshold: float = 0.5, max_faces_per_frame: int = 0,
                 fast_motion_fraction: float = 0.75, reidentify_by_name: bool = True,
                 scene_linking: Optional[SceneLinking] = None, crop_detection: bool = True,
                 full_frame_interval: int = 3, crop_input_size: int = 128, crop_margin: float = 3.0,
                 crop_min_scale: float = 1.0, crop_tentative: bool = True, large_frame_input_size: int = 960,
                 large_frame_side: int = 480) -> None:
        if detector is None:
            raise ValueError("detector must have a detect(frame) method")
        if tracker is None:
            raise ValueError("tracker must have an update(detections, scene_cut) method")
        check_int("full_frame_interval", full_frame_interval, 1)
        self.crop_tentative = check_bool("crop_tentative", crop_tentative)
        self.crops = CropDetection(crop_input_size, crop_margin, min_scale=crop_min_scale)
        self.crop_detection = check_bool("crop_detection", crop_detection)
        if self.crop_detection and not callable(getattr(detector, "detect_crops", None)):
            logger.info("crop_detection: %s has no detect_crops(crops, input_size), so every detection "
                        "is a full frame", type(detector).__name__)
            self.crop_detection = False
        elif self.crop_detection and getattr(detector, "fixed_input_size", None) is not None:
            logger.info("crop_detection: the detector takes a fixed %d px input only, so every detection "
                        "is a full frame", detector.fixed_input_size)
            self.crop_detection = False
        self.large_frame_input_size = check_int("large_frame_input_size", large_frame_input_size, 0)
        if self.large_frame_input_size % 32:
            raise ValueError(f"large_frame_input_size must be a multiple of 32, got {large_frame_input_size!r}")
        self.large_frame_side = check_int("large_frame_side", large_frame_side, 1)
        if self.large_frame_input_size and getattr(detector, "fixed_input_size", None) is not None:
            logger.info("large_frame_input_size: the detector takes a fixed %d px input only, so every frame "
                        "is detected at it", detector.fixed_input_size)
            self.large_frame_input_size = 0
        elif self.large_frame_input_size and not takes_keyword(getattr(detector, "detect", None), "input_size"):
            logger.info("large_frame_input_size: %s.detect takes no input_size, so every frame is detected at "
                        "the detector's own size", type(detector).__name__)
            self.large_frame_input_size = 0
        self.schedule = DetectionSchedule(detect_interval, warmup_detect_interval,
                                          full_frame_interval if self.crop_detection else 1)
        self.reuse = EmbeddingReuse(embed_policy, embed_refresh_interval, settled_observations,
                                    reuse_iou_threshold, max_faces_per_frame)
        self.fast_motion_fraction = check_number("fast_motion_fraction", fast_motion_fraction, 0)
        self.reidentify_by_name = check_bool("reidentify_by_name", reidentify_by_name)
        self.detector = detector
        self.embedder = embedder
        self.tracker = tracker
        self.identifier = identifier
        self.scene_cut_detector = scene_cut_detector
        self.quality_fn = quality_fn
        if scene_linking is not None and not isinstance(scene_linking, SceneLinking):
            raise ValueError(f"scene_linking must be a SceneLinking, got {type(scene_linking).__name__}")
        self.scene_linking = scene_linking
        self.shown = ShownBoxes()
        self._shown_ids: List[int] = []      # confirmed tracks matched on the last detection frame
        self._crop_ids: List[int] = []       # tracks looked for in crops on the next detection frame

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every track (a new source); the tracker and identifier are reset too."""
        self.tracker.reset()
        if self.identifier is not None:
            self.identifier.reset()
        if self.scene_cut_detector is not None:
            self.scene_cut_detector.reset()
        self.schedule.reset()
        self.reuse.clear()
        self.shown.clear()
        self._shown_ids = []
        self._crop_ids = []
        if self.scene_linking is not None:
            self.scene_linking.reset()

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
            Force (True) or forbid (False) cut mode on this frame; None asks the shot-cut detector.
        """
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an (H, W, 3) BGR array, got {getattr(frame, 'shape', type(frame))}")
        timings = {stage: 0.0 for stage in PROCESS_STAGES}

        # Step 1: shot cut? (cheap; runs on every frame so no cut is missed)
        t0 = time.perf_counter()
        cut = self._scene_cut(frame, scene_cut)
        if self.scene_linking is not None:
            self.scene_linking.frame(frame, cut)
        timings["scene_cut"] = time.perf_counter() - t0
        if not self.schedule.due(frame_index, cut):
            return self._predicted_result(frame, frame_index, timestamp, timings)

        # Step 2: detect, on the whole frame or inside crops around the tracks.
        t0 = time.perf_counter()
        previous = self.schedule.last_detect_frame
        ahead = 0 if previous is None else frame_index - previous
        detections, full = self._detect(frame, frame_index, cut, ahead)
        timings["detect"] = time.perf_counter() - t0
        elapsed = self.schedule.detected(frame_index, full=full)

        # Step 3: embed what is needed (all of it in the baseline or on cuts).
        t0 = time.perf_counter()
        detections, fresh, quality, complete = self._embed(frame, frame_index, detections, cut, ahead)
        timings["embed"] = time.perf_counter() - t0
        # The tracker needs an embedding for every detection or none; the fresh
        # ones of an incomplete set still feed the identifier.
        tracker_input = detections if complete else detections.with_embedding(None)

        update = self._track_and_identify(detections, tracker_input, fresh, quality, cut, elapsed, timings, timestamp)
        return self._detected_result(frame, frame_index, timestamp, detections, fresh, update, cut, timings)

    # ---------------------------------------------------------------- helpers
    def _detect(self, frame, frame_index: int, cut: bool, ahead: int):
        """This frame's detections and whether they come from the whole frame (else from crops)."""
        ids = self._crop_ids
        height, width = frame.shape[:2]
        side = self.full_frame_input_size(height, width)
        if not self.crop_detection or not ids or ahead < 1 or self.schedule.full_due(frame_index, cut):
            return detect_at(self.detector, frame, side), True
        # A full-frame pass letterboxes the frame to ``side`` on its long side: that scale,
        # and those input pixels, are what the crops must not go below, and must cost less than.
        scale = side / max(height, width)
        windows = self.crops.plan(self.tracker.predicted_boxes(ids, ahead), width, height, scale)
        if windows.input_pixels >= side * side * min(height, width) / max(height, width):
            return detect_at(self.detector, frame, side), True
        return self.crops.detect(self.detector, frame, windows), False

    def full_frame_input_size(self, height: int, width: int) -> int:
        """The detector input side of a full-frame pass over a ``height`` x ``width`` frame."""
        if self.large_frame_input_size and max(height, width) > self.large_frame_side:
            return self.large_frame_input_size
        return int(getattr(self.detector, "input_size", 640))

    def _track_and_identify(self, detections, tracker_input, fresh, quality, cut, elapsed, timings, timestamp):
        """Steps 4-5: track (cut mode on shot cuts, name-based links of held tracks), then
        identify from fresh embeddings only."""
        # Step 4: track (cut mode on shot cuts), with name-based links of held tracks.
        t0 = time.perf_counter()
        fresh_det = set(int(d) for d in detections.det_index[fresh]) if detections.embedding is not None else set()
        consumed: set = set()
        linker = (name_linker(self.identifier, detections, quality, fresh_det, consumed, timestamp)
                  if self.identifier is not None and self.reidentify_by_name else None)
        update = self.tracker.update(tracker_input, scene_cut=cut, elapsed_frames=elapsed, held_linker=linker)
        timings["track"] = time.perf_counter() - t0

        # Step 5: identify, from fresh embeddings only.
        t0 = time.perf_counter()
        if self.identifier is not None:
            evidence = [t for t in update.tracks if t.det_index is not None
                        and int(t.det_index) in fresh_det and int(t.det_index) not in consumed]
            if evidence:
                self.identifier.update(evidence, detections, quality, timestamp=timestamp)
            if update.ended_ids:
                self.identifier.forget(update.ended_ids)
        timings["identify"] = time.perf_counter() - t0
        return update

    def _scene_cut(self, frame: np.ndarray, forced: Optional[bool]) -> bool:
        if self.scene_cut_detector is not None:
            detected = bool(self.scene_cut_detector.update(frame))
            return detected if forced is None else bool(forced)
        return bool(forced)

    def _embed(self, frame, frame_index: int, detections: Detections, cut: bool, ahead: int):
        """Embed the rows the reuse policy asks for; borrow the others' track embeddings.

        Returns the detections with embeddings (or without), the ``(N,)`` fresh
        mask, the ``(N,)`` quality of the fresh rows (or None) and whether every
        row has an embedding.
        """
        n = len(detections)
        fresh = np.zeros(n, bool)
        if self.embedder is None or n == 0:
            return detections, fresh, None, detections.embedding is not None
        candidates = self.reuse.reusable(self._shown_ids)
        predicted = self.tracker.predicted_boxes(candidates, ahead) if candidates else None
        plan = self.reuse.plan(detections.xyxy, frame_index, candidates, predicted, cut=cut)
        embedding, quality = None, None
        rows = np.flatnonzero(plan.need)
        if len(rows):
            subset = detections[rows]
            vectors = np.asarray(self.embedder.embed(frame, subset), np.float32)
            if self.quality_fn is not None:
                quality = np.zeros(n, np.float64)
                quality[rows] = np.asarray(self.quality_fn(frame, subset).score, np.float64).reshape(-1)
            embedding = np.zeros((n, vectors.shape[1]), np.float32)
            embedding[rows] = vectors
            fresh[rows] = True
        missing = [r for r in range(n) if not plan.need[r]]
        complete = all(r in plan.borrow for r in missing)
        borrowed = [r for r in missing if r in plan.borrow]
        for r in borrowed:
            vec = self.reuse.embedding(plan.borrow[r])
            if embedding is None:
                embedding = np.zeros((n, len(vec)), np.float32)
            embedding[r] = vec
        if embedding is None:
            return detections, fresh, None, False
        return detections.with_embedding(embedding), fresh, quality, complete

    def _identity(self, track_id: int):
        if self.identifier is None:
            return None, float("nan")
        identity = self.identifier.get(track_id)
        return identity.label, float(identity.score)   # the name, or "Unknown #17" for a known Unknown

    def _detected_result(self, frame, frame_index, timestamp, detections, fresh, update, cut,
                         timings) -> FrameResult:
        rows_of = {int(d): r for r, d in enumerate(detections.det_index)}
        gone = set(update.lost_ids) | set(update.ended_ids)
        self.shown.forget(gone)
        self.reuse.forget(gone)
        revived = set(update.revived_ids)
        shown, boxes, confs = [], [], []
        for track in update.tracks:
            if not track.is_confirmed() or track.time_since_update != 0:
                continue
            tid = int(track.track_id)
            row = rows_of.get(int(track.det_index)) if track.det_index is not None else None
            conf = float(detections.confidence[row]) if row is not None else float("nan")
            box = detections.xyxy[row] if row is not None else track.to_xyxy()
            self.shown.observe(tid, box, conf, frame_index, restart=cut or tid in revived)
            if row is not None and fresh[row]:
                self.reuse.record(tid, detections.embedding[row], frame_index)
            shown.append(tid)
            boxes.append(np.asarray(box, np.float32).reshape(4))
            confs.append(conf)
        alive = [int(t.track_id) for t in update.tracks]
        self.shown.keep(alive)
        self.reuse.keep(alive)
        self._shown_ids = shown
        self._crop_ids = [int(t.track_id) for t in update.tracks if t.time_since_update == 0
                          and (t.is_confirmed() or (self.crop_tentative and t.is_tentative()))]
        self.schedule.warming_up = (
            any(t.is_tentative() for t in update.tracks)
            or (self.embedder is not None and any(not self.reuse.settled(t) for t in shown))
            or self.shown.moving_fast(shown, self.schedule.detect_interval, self.fast_motion_fraction))
        result = self._result(frame, frame_index, timestamp, shown, np.asarray(boxes, np.float32), timings,
                              confidence=np.asarray(confs, np.float32), predicted=False)
        result.detected, result.scene_cut, result.detections = True, cut, detections
        result.num_detections, result.num_embedded = len(detections), int(fresh.sum())
        result.lost_ids, result.ended_ids = list(update.lost_ids), list(update.ended_ids)
        early = {int(t.track_id): rows_of[int(t.det_index)] for t in update.tracks if t.is_tentative()
                 and t.time_since_update == 0 and t.det_index is not None and int(t.det_index) in rows_of}
        result.tentative_ids, rows = np.asarray(list(early), np.int64), list(early.values())
        result.tentative_xyxy = clip_xyxy(detections.xyxy[rows].reshape(-1, 4), *frame.shape[1::-1]).astype(np.float32)
        result.tentative_confidence = detections.confidence[rows].astype(np.float32)
        if self.scene_linking is not None:
            embedding_of = self.identifier.track_embedding if self.identifier is not None else None
            self._show_links(result, self.scene_linking.detected(frame, shown, result.xyxy, result.names,
                                                                 embedding_of))
        return result

    def _predicted_result(self, frame, frame_index, timestamp, timings) -> FrameResult:
        ids = list(self._shown_ids)
        result = self._result(frame, frame_index, timestamp, ids, self.shown.boxes(ids, frame_index), timings,
                              confidence=self.shown.confidence(ids), predicted=True)
        if self.scene_linking is not None:
            self._show_links(result, self.scene_linking.predicted(ids))
        return result

    def _show_links(self, result: FrameResult, links) -> None:
        """Names from the scene's identities on the tracks their own faces have not named."""
        result.names = list(links.names)
        result.identity_ids = links.identity_ids
        result.linked = links.linked
        result.scene = self.scene_linking.scene

    def _result(self, frame, frame_index, timestamp, ids, boxes, timings, *, confidence, predicted) -> FrameResult:
        height, width = frame.shape[:2]
        names, scores = [], []
        for tid in ids:
            name, score = self._identity(tid)
            names.append(name)
            scores.append(score)
        xyxy = clip_xyxy(np.asarray(boxes, np.float32).reshape(-1, 4), width, height).astype(np.float32)
        return FrameResult(frame_index=frame_index, timestamp=float(timestamp), track_ids=np.asarray(ids, np.int64),
                           xyxy=xyxy, confidence=confidence, names=names, scores=np.asarray(scores, np.float32),
                           predicted=np.full(len(ids), predicted, bool), timings=timings)
