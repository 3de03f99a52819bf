"""What every frame source is: :class:`Frame`, the :class:`Source` base class and :class:`SourceError`.

File sources are in :mod:`pipeline.sources`, cameras and network streams in
:mod:`pipeline.live_source`; :func:`pipeline.sources.open_source` picks one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Frame rate assumed when a file or stream does not report a usable one.
FALLBACK_FPS = 25.0


class SourceError(RuntimeError):
    """A source cannot be opened or read; the message says which and why."""


@dataclass
class Frame:
    """One decoded frame.

    Attributes
    ----------
    image : ndarray
        An ``(H, W, 3)`` uint8 BGR image.
    index : int
        Position in the source: the frame number in a file, or the count of
        frames decoded so far in a live source (dropped frames leave gaps).
    timestamp : float
        Seconds since the start of the source (the file's presentation time,
        or wall-clock time since the live source was opened).
    discontinuity : bool
        True on the first frame after a live stream was reconnected.
    decode_seconds : float
        Time spent decoding this frame (in the background thread).
    """

    image: np.ndarray
    index: int
    timestamp: float
    discontinuity: bool = False
    decode_seconds: float = 0.0


class Source:
    """Base class: ``read() -> Frame | None``, ``close()``, and what is known of the stream."""

    #: True for cameras and network streams (newest frame, drops allowed).
    is_live: bool = False

    def __init__(self, description: str) -> None:
        self.description = description
        self.fps: float = FALLBACK_FPS
        self.width: int = 0
        self.height: int = 0
        #: Number of frames when known (files), else None.
        self.frame_count: Optional[int] = None
        #: Frames decoded but never returned because a newer one replaced them.
        self.dropped_frames = 0
        #: Number of times a network stream was reopened after a drop.
        self.reconnects = 0

    def read(self) -> Optional[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Stop background threads and release the device or file."""

    def __iter__(self):
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


def usable_fps(value: float) -> float:
    """``value`` when it is a plausible frame rate, else :data:`FALLBACK_FPS`."""
    return float(value) if value and np.isfinite(value) and 0.5 < value < 1000 else FALLBACK_FPS
