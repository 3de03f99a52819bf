"""What each part of the pipeline must provide, in one place.

The implementations do not import these: they are structural
(``typing.Protocol``), so a fake in a test satisfies them by having the same
methods. ``tests/test_contracts.py`` runs one contract test against every
implementation and every fake.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from tracker.detections import Detections


@runtime_checkable
class Detector(Protocol):
    """Faces in a frame (:class:`models.detector.FaceDetector`)."""

    def detect(self, frame: np.ndarray) -> Detections:
        """The faces of an ``(H, W, 3)`` BGR frame, with ``det_index`` 0..N-1."""


@runtime_checkable
class Embedder(Protocol):
    """Face embeddings (:class:`models.embedder.FaceEmbedder`)."""

    def embed(self, frame: np.ndarray, detections: Detections) -> np.ndarray:
        """``(N, D)`` float32 unit vectors, one per row of ``detections``."""


@runtime_checkable
class TrackView(Protocol):
    """What the pipeline and the identifier read of a track (:class:`tracker.track.Track`)."""

    track_id: int
    time_since_update: int
    det_index: Optional[int]
    held: bool

    def is_confirmed(self) -> bool: ...

    def is_tentative(self) -> bool: ...

    def to_xyxy(self) -> np.ndarray: ...


@runtime_checkable
class Tracker(Protocol):
    """The tracker (:class:`tracker.Tracker`); its update returns a :class:`tracker.result.TrackerUpdate`."""

    def update(self, detections: Detections, scene_cut: bool = False, elapsed_frames: int = 1, *,
               held_linker=None):
        """Advance ``elapsed_frames`` frames; returns the tracks and the lost, ended and revived ids."""

    def predicted_boxes(self, track_ids: Sequence[int], frames_ahead: int) -> np.ndarray:
        """``(N, 4)`` xyxy boxes of active tracks predicted ``frames_ahead`` frames after the last update."""

    def reset(self):
        """Forget every track."""


@runtime_checkable
class Identifier(Protocol):
    """Names for tracks from their evidence (:class:`gallery.identifier.Identifier`)."""

    def update(self, tracks: Sequence[TrackView], detections: Detections, quality=None, *,
               timestamp: Optional[float] = None) -> None:
        """Add the evidence of the tracks matched this frame (``det_index`` selects their rows) at ``timestamp`` s."""

    def get(self, track_id: int):
        """The track's ``Identity`` (``name`` None = Unknown, ``score``)."""

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the evidence of ended tracks."""

    def reset(self) -> None:
        """Forget everything."""


@runtime_checkable
class SceneCutDetector(Protocol):
    """Shot cuts (:class:`pipeline.scene_cut.HistogramSceneCutDetector`)."""

    def update(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` starts a new shot."""

    def reset(self) -> None: ...


@runtime_checkable
class Source(Protocol):
    """Frames in (:func:`pipeline.sources.open_source`)."""

    fps: Optional[float]
    frame_count: Optional[int]
    is_live: bool

    def read(self):
        """The next :class:`pipeline.sources.Frame`, or None at the end."""

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Annotated frames out (:mod:`pipeline.sinks`)."""

    def write(self, frame: np.ndarray) -> Optional[bool]:
        """Take one frame; False asks the run to stop."""

    def close(self) -> None: ...


#: Every protocol, for the contract test.
ALL: List[type] = [Detector, Embedder, TrackView, Tracker, Identifier, SceneCutDetector, Source, Sink]
