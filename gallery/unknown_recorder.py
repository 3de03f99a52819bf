"""Recording what the camera saw: each ended track becomes an appearance in the gallery, with its best crops.

:class:`UnknownRecorder` is handed every raw frame and its
:class:`~pipeline.results.FrameResult` by the run loop
(:func:`pipeline.loop.run`, ``recorder=``) before anything is drawn on it. It
keeps, per shown track, the identifier's mean embedding and identity, the
face heights of the frames it was matched on and its ``max_crops`` best face
crops (by detector confidence times face size). When the tracker ends the
track, or the run ends, the track is written with
:meth:`gallery.unknowns.UnknownGallery.record`: an Unknown one joins or
starts a cluster, a named one is kept for "this is not X". A new cluster is
matched by the identifier from the next track on (the shared
:class:`~gallery.unknown_index.UnknownIndex` is refreshed).

A write that fails (a locked or full gallery) is logged and the run goes on:
a live pipeline never stops for its memory of strangers.
"""
from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from gallery.store import GalleryError
from gallery.unknown_index import UnknownIndex, join_separation
from gallery.unknowns import Appearance, UnknownGallery
from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

#: Face crops are enlarged by this fraction of the box on each side.
CROP_MARGIN = 0.2
#: Face height (px) from which a bigger face makes no better crop.
GOOD_CROP_HEIGHT = 112.0
#: Face heights kept per track for the evidence model (a long track's first ones; memory stays bounded).
MAX_HEIGHTS = 1000


@dataclass
class _Seen:
    first: float
    last: float
    identity: object = None
    mean: Optional[np.ndarray] = None
    heights: List[float] = field(default_factory=list)
    crops: List[Tuple[float, int, bytes]] = field(default_factory=list)   # a min-heap of (score, n, jpeg)


class UnknownRecorder:
    """Turns the tracks of a run into stored appearances.

    Parameters
    ----------
    unknowns : UnknownGallery
        Where the appearances go.
    identifier : gallery.identifier.Identifier
        Read for each shown track's mean embedding and identity.
    source : str
        Recorded with each appearance (the source's description).
    index : UnknownIndex or None
        The identifier's index of the Unknowns, refreshed after each new cluster.
    min_join_separation : float
        The evidence model's call: an Unknown track whose :func:`~gallery.unknown_index.join_separation`
        (from the identifier's ``evidence_model`` and its face heights) is lower is not remembered.
    max_crops : int
        Face crops kept per appearance (0 keeps none).
    crop_height : int
        Crops are scaled down to at most this height in pixels.
    jpeg_quality : int
        JPEG quality of the crops, 1-100.
    clock : callable
        Wall-clock seconds (``time.time``); the first and last time of an appearance.
    """

    def __init__(self, unknowns: UnknownGallery, identifier, *, source: str = "",
                 index: Optional[UnknownIndex] = None, min_join_separation: float = 3.0, max_crops: int = 3,
                 crop_height: int = 112,
                 jpeg_quality: int = 90, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(unknowns, UnknownGallery):
            raise ValueError(f"unknowns must be an UnknownGallery, got {type(unknowns).__name__}")
        self.unknowns, self.identifier, self.source, self.index = unknowns, identifier, str(source), index
        self.min_join_separation = check_number("min_join_separation", min_join_separation, 0)
        self.max_crops = check_int("max_crops", max_crops, 0)
        self.crop_height = check_int("crop_height", crop_height, 16)
        self.jpeg_quality = check_int("jpeg_quality", jpeg_quality, 1, 100)
        self.clock = clock
        self._seen: Dict[int, _Seen] = {}
        self._crop_count = 0
        #: Cluster ids of the Unknown appearances recorded so far, in order.
        self.recorded: List[int] = []

    def observe(self, image: np.ndarray, result) -> None:
        """One frame: the raw ``(H, W, 3)`` BGR image and its ``FrameResult``; ended tracks are written."""
        if result.detected:
            now = self.clock()
            for tid, box, conf, predicted in zip(result.track_ids, result.xyxy, result.confidence,
                                                 result.predicted):
                if not predicted:
                    self._observe_track(int(tid), image, np.asarray(box, float), float(conf), now)
        for tid in result.ended_ids:
            self._end(int(tid))

    def finish(self) -> None:
        """The run ended: write every track still open, then apply the retention."""
        for tid in sorted(self._seen):
            self._end(tid)
        try:
            removed = self.unknowns.prune()
        except GalleryError as exc:
            logger.error("could not apply the retention of Unknown appearances: %s", exc)
            return
        if removed:
            logger.info("retention: %d old Unknown appearances deleted", removed)

    def _observe_track(self, tid: int, image: np.ndarray, box: np.ndarray, conf: float, now: float) -> None:
        seen = self._seen.setdefault(tid, _Seen(now, now))
        seen.last = now
        mean = self.identifier.track_embedding(tid)
        if mean is not None:
            seen.mean, seen.identity = mean, self.identifier.get(tid)
        height = float(box[3] - box[1])
        if len(seen.heights) < MAX_HEIGHTS:
            seen.heights.append(height)
        score = (conf if np.isfinite(conf) else 0.0) * min(height, GOOD_CROP_HEIGHT) / GOOD_CROP_HEIGHT
        if self.max_crops and (len(seen.crops) < self.max_crops or score > seen.crops[0][0]):
            jpeg = self._crop(image, box)
            if jpeg is not None:
                self._crop_count += 1
                item = (score, self._crop_count, jpeg)
                (heapq.heappush if len(seen.crops) < self.max_crops else heapq.heapreplace)(seen.crops, item)

    def _crop(self, image: np.ndarray, box: np.ndarray) -> Optional[bytes]:
        import cv2

        x1, y1, x2, y2 = box
        mx, my = CROP_MARGIN * (x2 - x1), CROP_MARGIN * (y2 - y1)
        h, w = image.shape[:2]
        x1, y1 = int(max(0, x1 - mx)), int(max(0, y1 - my))
        x2, y2 = int(min(w, x2 + mx)), int(min(h, y2 + my))
        if x2 - x1 < 2 or y2 - y1 < 2:
            return None
        crop = image[y1:y2, x1:x2]
        if crop.shape[0] > self.crop_height:
            scale = self.crop_height / crop.shape[0]
            crop = cv2.resize(crop, (max(1, int(round(crop.shape[1] * scale))), self.crop_height),
                              interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return buf.tobytes() if ok else None

    def _end(self, tid: int) -> None:
        seen = self._seen.pop(tid, None)
        if seen is None or seen.mean is None or seen.identity is None:
            return
        identity = seen.identity
        if identity.observations < self.identifier.min_observations:
            return
        separation = join_separation(self.identifier.evidence_model, seen.heights)
        if identity.name is None and separation < self.min_join_separation:
            logger.info("track %d not remembered: its faces are too small to tell who it is (separation %.1f)",
                        tid, separation)
            return
        crops = tuple((s, j) for s, _, j in sorted(seen.crops, reverse=True))
        appearance = Appearance(seen.mean, int(identity.observations), tuple(seen.heights), seen.first, seen.last,
                                self.source, tid, crops, identity.name)
        try:
            cluster = self.unknowns.record(appearance)
            if cluster is not None:
                self.recorded.append(cluster)
                if self.index is not None:
                    self.index.replace(self.unknowns.index())
        except GalleryError as exc:
            logger.error("could not remember the appearance of track %d: %s", tid, exc)
