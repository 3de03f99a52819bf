"""The Live view: a running pipeline's annotated frames as an MJPEG stream.

:class:`LiveFrames` is a sink (:class:`pipeline.sink_base.Sink`) that keeps
the newest annotated frame as a JPEG; :func:`mjpeg` streams it to each
viewer as ``multipart/x-mixed-replace``, which every browser shows in an
``<img>``. :class:`LiveRun` runs :func:`pipeline.loop.run` in a background
thread with that sink. A file source is paced at its frame rate, so it is
watched at its own speed.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Callable, Optional

import numpy as np

from pipeline.sink_base import Sink

logger = logging.getLogger(__name__)

#: How often a viewer checks for a new frame, in seconds.
POLL_SECONDS = 0.03
BOUNDARY = "facetrackframe"


class LiveFrames(Sink):
    """The newest annotated frame, as JPEG bytes with a sequence number.

    Parameters
    ----------
    pace_fps : float or None
        When given, :meth:`write` waits so frames come no faster than this rate (a file source).
    jpeg_quality : int
        JPEG quality of the stream (1-100).
    """

    def __init__(self, *, pace_fps: Optional[float] = None, jpeg_quality: int = 80) -> None:
        self.pace_fps = pace_fps
        self.jpeg_quality = int(jpeg_quality)
        self.sequence = 0
        self.jpeg: Optional[bytes] = None
        self.closed = False
        self.stop_requested = False
        self._lock = threading.Lock()
        self._next_time = 0.0

    def write(self, frame_bgr: np.ndarray) -> bool:
        import cv2

        ok, data = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if ok:
            with self._lock:
                self.jpeg, self.sequence = data.tobytes(), self.sequence + 1
        if self.pace_fps:
            now = time.monotonic()
            self._next_time = max(self._next_time + 1.0 / self.pace_fps, now)
            time.sleep(max(0.0, self._next_time - now))
        return not self.stop_requested

    def latest(self) -> tuple:
        """``(sequence, jpeg)`` of the newest frame (``(0, None)`` before the first)."""
        with self._lock:
            return self.sequence, self.jpeg

    def close(self) -> None:
        self.closed = True


async def mjpeg(frames: LiveFrames, is_disconnected: Callable):
    """The parts of a ``multipart/x-mixed-replace`` stream: each new frame once, until the run ends."""
    seen = -1
    while not await is_disconnected():
        sequence, jpeg = frames.latest()
        if jpeg is not None and sequence != seen:
            seen = sequence
            yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                   ).encode() + jpeg + b"\r\n"
        elif frames.closed:
            return
        else:
            await asyncio.sleep(POLL_SECONDS)


class LiveRun:
    """A pipeline run in a background thread, feeding a :class:`LiveFrames`.

    Parameters
    ----------
    start : callable
        ``(frames) -> RunSummary``: runs the loop with ``frames`` among its sinks (the composition
        layer builds the source, pipeline and writers and calls :func:`pipeline.loop.run`).
    frames : LiveFrames
    description : str
        What is shown (the source), for the page.
    """

    def __init__(self, start: Callable, frames: LiveFrames, description: str = "") -> None:
        self.frames = frames
        self.description = description
        self.summary = None
        self.error: Optional[str] = None
        self._start = start
        self._thread = threading.Thread(target=self._run, name="live-pipeline", daemon=True)

    def _run(self) -> None:
        try:
            self.summary = self._start(self.frames)
        except Exception as exc:  # noqa: BLE001 - shown on the page, and logged
            logger.exception("the live pipeline failed")
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.frames.close()

    def start(self) -> "LiveRun":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> dict:
        """What the Live page shows about the run."""
        summary = self.summary
        return {"running": self.running, "source": self.description, "frames": self.frames.sequence,
                "error": self.error or (summary.output_errors[0] if summary and summary.output_errors else None),
                "stop_reason": summary.stop_reason if summary else None}

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to stop after the current frame and wait for it."""
        self.frames.stop_requested = True
        self._thread.join(timeout)
