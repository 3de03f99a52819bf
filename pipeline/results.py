"""What the pipeline reports: one :class:`FrameResult` per frame, one :class:`RunSummary` per run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from tracker.detections import Detections

#: Stages timed inside :meth:`pipeline.runner.Pipeline.process`.
PROCESS_STAGES = ("scene_cut", "detect", "embed", "track", "identify")
#: Stages timed by :func:`pipeline.loop.run` around it: ``decode`` is the source's decoding
#: thread, ``wait`` the loop blocked on the source, ``encode`` the loop handing
#: frames to the sinks, ``encode_busy`` background sink threads encoding, ``output_wait`` the loop
#: waiting for the output thread (``overlap_output``: ``draw`` and ``encode`` are then spent in it).
RUN_STAGES = ("decode", "wait", "draw", "encode", "encode_busy", "output_wait")


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
        ``(N,)`` bool: the box is extrapolated (no detection ran on this frame).
    detected : bool
        The detector ran on this frame.
    scene_cut : bool
        The frame was treated as the first of a new shot.
    num_detections, num_embedded : int
        Faces the detector found, and faces the embedder processed, on this frame.
    detections : Detections or None
        The detector's output (with embeddings), None on frames without detection.
    lost_ids, ended_ids : list of int
        Tracks that moved to the lost buffer / ended on this frame's update
        (empty on frames without detection).
    timings : dict
        Seconds spent in each of :data:`PROCESS_STAGES` (the run loop adds :data:`RUN_STAGES`).
    identity_ids : ndarray or None
        With scene linking: ``(N,)`` int64 identity-cluster ids (tracks of one person in a scene share one).
    linked : ndarray or None
        With scene linking: ``(N,)`` bool, the name comes from another track of the identity.
    scene : int
        With scene linking: the scene id of the frame (-1 without).
    tentative_ids : ndarray
        ``(M,)`` int64 ids of the tracks matched on this frame but not shown
        yet (tentative or held); two-pass mode draws them once they are shown.
    tentative_xyxy, tentative_confidence : ndarray
        ``(M, 4)`` float32 detection boxes of those tracks in frame pixels,
        and ``(M,)`` float32 their detector scores.
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
    identity_ids: Optional[np.ndarray] = None
    linked: Optional[np.ndarray] = None
    scene: int = -1
    tentative_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tentative_xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    tentative_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.track_ids)


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
    stop_reason : str
        Why the loop ended (``end of source``, ``max_frames``, ``interrupted``, ``window closed``).
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
    stop_signal : int
        The signal that stopped the run (``SIGINT``, ``SIGTERM``, ``SIGHUP``), 0 when none did.
    output_errors : list of str
        Outputs that could not be written, each one sentence naming the output and the cause
        (``stop_reason`` is ``"write error"`` when one stopped the run).
    source_warning : str
        Why a source ended before its announced length (a truncated file), else empty.
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
    stop_signal: int = 0
    output_errors: List[str] = field(default_factory=list)
    source_warning: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def stage_ms(self) -> Dict[str, float]:
        """Mean milliseconds per frame for each stage."""
        n = max(1, self.frames)
        return {k: 1000.0 * v / n for k, v in self.stage_seconds.items()}
