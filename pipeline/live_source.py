"""Live sources: a camera or a network stream, decoded in a thread that keeps only the newest frame.

A slow consumer drops stale frames instead of falling further and further
behind. A network stream that drops is reopened by the worker thread with
exponential backoff (:class:`ReconnectPolicy`) and the next frame is marked
``discontinuity=True`` (the pipeline treats it like a shot cut).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import cv2
import numpy as np

from pipeline.source_base import Frame, Source, SourceError, usable_fps
from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconnectPolicy:
    """When to reopen a dropped stream: exponential backoff, maybe a limit.

    Attributes
    ----------
    initial_delay : float
        First wait before reopening, in seconds (> 0); doubled after every
        failed attempt (the ``reconnect_initial_delay`` of ``open_source``).
    max_delay : float
        Longest wait between attempts, in seconds (>= ``initial_delay``).
    max_attempts : int
        Consecutive failed reopen attempts after which the source ends with
        a :class:`SourceError` from :meth:`LiveSource.read` (0 = never give
        up; Ctrl-C stops the run).
    """

    initial_delay: float = 0.5
    max_delay: float = 10.0
    max_attempts: int = 0

    def __post_init__(self) -> None:
        initial = check_number("reconnect_initial_delay", self.initial_delay, 0, low_open=True)
        object.__setattr__(self, "initial_delay", initial)
        object.__setattr__(self, "max_delay", check_number("reconnect_max_delay", self.max_delay, initial))
        object.__setattr__(self, "max_attempts", check_int("reconnect_max_attempts", self.max_attempts, 0))

    def next_delay(self, delay: float) -> float:
        """The wait after one of ``delay`` failed: doubled, at most ``max_delay``."""
        return min(delay * 2, self.max_delay)

    def delays(self) -> Iterator[float]:
        """The wait before each attempt, without end (the caller stops at :meth:`gives_up`)."""
        delay = self.initial_delay
        while True:
            yield delay
            delay = self.next_delay(delay)

    def gives_up(self, attempt: int) -> bool:
        """True when ``attempt`` consecutive failures are the limit."""
        return bool(self.max_attempts) and attempt >= self.max_attempts


class LiveSource(Source):
    """A camera or network stream decoded in a thread that keeps only the newest frame.

    Parameters
    ----------
    target : int or str
        A camera index or a URL for OpenCV's FFmpeg backend.
    description : str, optional
        What to call the source in messages (default ``str(target)``).
    reconnect : ReconnectPolicy or None
        How to reopen the stream when it drops (network streams); ``None``:
        a drop ends the source (cameras).
    open_timeout : float
        Seconds allowed for opening the stream and for each read before it
        counts as dropped (> 0).
    """

    is_live = True

    def __init__(
        self,
        target,
        *,
        description: Optional[str] = None,
        reconnect: Optional[ReconnectPolicy] = ReconnectPolicy(),
        open_timeout: float = 10.0,
    ) -> None:
        super().__init__(description or str(target))
        if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
            raise ValueError(f"reconnect must be a ReconnectPolicy or None, got {reconnect!r}")
        self.reconnect = reconnect
        self.open_timeout = check_number("open_timeout", open_timeout, 0, low_open=True)
        self._target = target
        self._cond = threading.Condition()
        self._latest: Optional[Frame] = None
        self._ended = False
        self._stop = threading.Event()
        self._error: Optional[str] = None
        self._count = 0
        self._t0 = time.monotonic()
        cap = self._open()
        if cap is None:
            raise SourceError(self._open_failure_message())
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise SourceError(self._open_failure_message())
        self.height, self.width = first.shape[:2]
        self.fps = usable_fps(cap.get(cv2.CAP_PROP_FPS))
        self._publish(first, 0.0, discontinuity=False)
        self._thread = threading.Thread(target=self._worker, args=(cap,), name=f"live:{self.description}",
                                        daemon=True)
        self._thread.start()

    def _open_failure_message(self) -> str:
        if isinstance(self._target, int):
            return (f"cannot open camera {self._target} (no such camera, or it is in use); without a camera, "
                    "give a video file, an image or a folder of images, or a stream URL "
                    "(rtsp://, http(s)://, rtmp://, udp://, srt://)")
        return f"cannot open stream {self.description} (nothing is serving it, or the URL is wrong)"

    def _open(self) -> Optional["cv2.VideoCapture"]:
        timeout_ms = int(self.open_timeout * 1000)
        if isinstance(self._target, int):
            cap = cv2.VideoCapture(self._target)
        else:
            cap = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def _publish(self, image: np.ndarray, decode_seconds: float, discontinuity: bool) -> None:
        frame = Frame(image, self._count, time.monotonic() - self._t0, discontinuity, decode_seconds)
        self._count += 1
        with self._cond:
            if self._latest is not None:
                self.dropped_frames += 1
            self._latest = frame
            self._cond.notify_all()

    def _worker(self, cap) -> None:
        discontinuity = False
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                ok, image = cap.read()
                if ok and image is not None:
                    self._publish(image, time.perf_counter() - start, discontinuity)
                    discontinuity = False
                    continue
                cap.release()
                if self.reconnect is None:
                    logger.warning("%s: stream ended", self.description)
                    return
                logger.warning("%s: stream dropped; reconnecting", self.description)
                cap = self._reconnect()
                if cap is None:  # stopped, or gave up (self._error says so)
                    return
                self.reconnects += 1
                discontinuity = True
        finally:
            if cap is not None:
                cap.release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _reconnect(self):
        attempt = 0
        for delay in self.reconnect.delays():
            attempt += 1
            if self._stop.wait(delay):
                return None
            cap = self._open()
            if cap is not None:
                logger.info("%s: reconnected after %d attempt(s)", self.description, attempt)
                return cap
            if self.reconnect.gives_up(attempt):
                self._error = f"gave up after {attempt} reconnect attempts"
                logger.error("%s: %s", self.description, self._error)
                return None
            logger.info("%s: reconnect attempt %d failed; next in %.1f s", self.description, attempt,
                        self.reconnect.next_delay(delay))
        return None  # pragma: no cover - delays() never ends

    def read(self) -> Optional[Frame]:
        """The newest frame not returned yet; blocks until one arrives, None at the end.

        Raises
        ------
        SourceError
            Once, when the stream dropped and reconnecting gave up
            (``reconnect_max_attempts``); None afterwards.
        """
        with self._cond:
            while self._latest is None and not self._ended and not self._stop.is_set():
                self._cond.wait(timeout=0.2)
            frame, self._latest = self._latest, None
            if frame is None and self._ended and self._error is not None and not self._stop.is_set():
                error, self._error = self._error, None
                raise SourceError(f"{self.description}: stream dropped and {error}")
            return frame

    @property
    def clock_origin(self) -> float:
        """``time.monotonic()`` when the source opened: frame ``f`` was captured (its decoded image reached
        the reader thread) at ``clock_origin + f.timestamp``."""
        return self._t0

    def interrupt(self) -> None:
        """Make :meth:`read` return None promptly (safe to call from a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=self.open_timeout + 2.0)
            self._thread = None
