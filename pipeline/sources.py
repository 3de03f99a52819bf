"""Frame sources: cameras, video files, image folders and network streams.

Every source yields :class:`Frame` objects from :meth:`Source.read` until it
returns ``None`` (the end). Two kinds behave differently on purpose:

* **Files** (video files, image folders) are processed frame by frame and no
  frame is ever dropped; decoding runs one frame ahead in a background thread
  so it overlaps with the processing of the previous frame.
* **Live** sources (cameras, network streams) decode in a background thread
  that keeps only the newest frame, so a slow consumer drops stale frames
  instead of falling further and further behind. A network stream that drops
  is reopened with exponential backoff and the next frame is marked
  ``discontinuity=True`` (the pipeline treats it like a shot cut).

:func:`open_source` turns what the user typed (``webcam``, ``0``, a path, a
URL) into the right source and raises :class:`SourceError` with one clear
sentence when it cannot be opened.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from models.io import read_image

logger = logging.getLogger(__name__)

#: URL schemes opened through OpenCV's FFmpeg backend as live network streams.
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp", "mms")
#: File name extensions read as still images (image folders and single images).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
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


def _usable_fps(value: float) -> float:
    return float(value) if value and np.isfinite(value) and 0.5 < value < 1000 else FALLBACK_FPS


class _PrefetchingSource(Source):
    """A file-like source decoded one step ahead in a thread, never dropping frames."""

    def __init__(self, description: str, prefetch: int) -> None:
        super().__init__(description)
        if int(prefetch) < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch!r}")
        self._queue: "queue.Queue[object]" = queue.Queue(maxsize=int(prefetch))
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._finished = False

    _END = object()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._worker, name=f"decode:{self.description}", daemon=True)
        self._thread.start()

    def _next(self) -> Optional[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _release(self) -> None:
        """Release the underlying file (called from the worker thread on exit)."""

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _worker(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self._next()
                if frame is None or not self._put(frame):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            self._error = exc
        finally:
            self._release()
            self._put(self._END)

    def read(self) -> Optional[Frame]:
        if self._finished:
            return None
        item = self._queue.get()
        if item is self._END:
            self._finished = True
            if self._error is not None:
                raise SourceError(f"{self.description}: {self._error}") from self._error
            return None
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None


class VideoFileSource(_PrefetchingSource):
    """A video file read frame by frame, none dropped.

    Parameters
    ----------
    path : str or Path
        The video file.
    prefetch : int
        Frames decoded ahead of the consumer in a background thread (>= 1).
    """

    def __init__(self, path, *, prefetch: int = 4) -> None:
        path = Path(path)
        super().__init__(str(path), prefetch)
        if not path.exists():
            raise SourceError(f"no such file or directory: {path}")
        if not path.is_file():
            raise SourceError(f"not a file: {path}")
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {path} as a video (not a video file, or an unsupported codec)")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise SourceError(f"{path} has no decodable video frames (not a video file, or an unsupported codec)")
        self._cap = cap
        self.fps = _usable_fps(cap.get(cv2.CAP_PROP_FPS))
        self.height, self.width = first.shape[:2]
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self._pending: Optional[np.ndarray] = first
        self._msec0: Optional[float] = None
        self._index = 0
        self._start()

    def _next(self) -> Optional[Frame]:
        start = time.perf_counter()
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                return None
        # The container's presentation time (relative to the first frame), else index / fps.
        msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        index = self._index
        self._index += 1
        timestamp = index / self.fps
        if msec is not None and np.isfinite(msec):
            if self._msec0 is None:
                self._msec0 = msec
            if index > 0 and msec > self._msec0:
                timestamp = (msec - self._msec0) / 1000.0
        return Frame(image, index, timestamp, decode_seconds=time.perf_counter() - start)

    def _release(self) -> None:
        self._cap.release()


class ImageFolderSource(_PrefetchingSource):
    """The images of a folder (or one image), in file-name order, as frames.

    Parameters
    ----------
    paths : sequence of Path
        The image files.
    fps : float
        Frame rate assigned to the sequence (> 0), for timestamps and output video.
    prefetch : int
        Images decoded ahead of the consumer (>= 1).
    """

    def __init__(self, paths: Sequence[Path], *, fps: float = FALLBACK_FPS, prefetch: int = 4,
                 description: Optional[str] = None) -> None:
        super().__init__(description or (str(paths[0].parent) if paths else "images"), prefetch)
        if float(fps) <= 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if not paths:
            raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.description}")
        self._paths: List[Path] = list(paths)
        try:
            first = read_image(self._paths[0])
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        self.fps = float(fps)
        self.height, self.width = first.shape[:2]
        self.frame_count = len(self._paths)
        self._index = 0
        self._start()

    @classmethod
    def from_folder(cls, folder, **keywords) -> "ImageFolderSource":
        folder = Path(folder)
        paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        return cls(paths, description=str(folder), **keywords)

    def _next(self) -> Optional[Frame]:
        while self._index < len(self._paths):
            path = self._paths[self._index]
            index = self._index
            self._index += 1
            start = time.perf_counter()
            try:
                image = read_image(path)   # non-ASCII paths, alpha, 16-bit, grayscale -> BGR uint8
            except ValueError as exc:
                logger.warning("skipping %s: %s", path, exc)
                continue
            return Frame(image, index, index / self.fps, decode_seconds=time.perf_counter() - start)
        return None


class LiveSource(Source):
    """A camera or network stream decoded in a thread that keeps only the newest frame.

    Parameters
    ----------
    target : int or str
        A camera index or a URL for OpenCV's FFmpeg backend.
    reconnect : bool
        Reopen the stream with exponential backoff when it drops (network
        streams); when False a drop ends the source.
    reconnect_initial_delay : float
        First wait before reopening, in seconds (> 0); doubled after every failed attempt.
    reconnect_max_delay : float
        Longest wait between attempts, in seconds (>= ``reconnect_initial_delay``).
    reconnect_max_attempts : int
        Consecutive failed reopen attempts after which the source ends with
        a :class:`SourceError` from :meth:`read` (0 = never give up; Ctrl-C
        stops the run).
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
        reconnect: bool = True,
        reconnect_initial_delay: float = 0.5,
        reconnect_max_delay: float = 10.0,
        reconnect_max_attempts: int = 0,
        open_timeout: float = 10.0,
    ) -> None:
        super().__init__(description or str(target))
        if float(reconnect_initial_delay) <= 0:
            raise ValueError(f"reconnect_initial_delay must be > 0, got {reconnect_initial_delay!r}")
        if float(reconnect_max_delay) < float(reconnect_initial_delay):
            raise ValueError(
                f"reconnect_max_delay must be >= reconnect_initial_delay, got {reconnect_max_delay!r}")
        if int(reconnect_max_attempts) < 0:
            raise ValueError(f"reconnect_max_attempts must be >= 0, got {reconnect_max_attempts!r}")
        if float(open_timeout) <= 0:
            raise ValueError(f"open_timeout must be > 0, got {open_timeout!r}")
        self._target = target
        self.reconnect = bool(reconnect)
        self.reconnect_initial_delay = float(reconnect_initial_delay)
        self.reconnect_max_delay = float(reconnect_max_delay)
        self.reconnect_max_attempts = int(reconnect_max_attempts)
        self.open_timeout = float(open_timeout)
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
        self.fps = _usable_fps(cap.get(cv2.CAP_PROP_FPS))
        self._publish(first, 0.0, discontinuity=False)
        self._thread = threading.Thread(target=self._worker, args=(cap,), name=f"live:{self.description}",
                                        daemon=True)
        self._thread.start()

    def _open_failure_message(self) -> str:
        if isinstance(self._target, int):
            return f"cannot open camera {self._target} (no such camera, or it is in use)"
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
                if not self.reconnect:
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
        delay = self.reconnect_initial_delay
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            if self._stop.wait(delay):
                return None
            cap = self._open()
            if cap is not None:
                logger.info("%s: reconnected after %d attempt(s)", self.description, attempt)
                return cap
            if self.reconnect_max_attempts and attempt >= self.reconnect_max_attempts:
                self._error = f"gave up after {attempt} reconnect attempts"
                logger.error("%s: %s", self.description, self._error)
                return None
            logger.info("%s: reconnect attempt %d failed; next in %.1f s", self.description, attempt,
                        min(delay * 2, self.reconnect_max_delay))
            delay = min(delay * 2, self.reconnect_max_delay)
        return None

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

    def interrupt(self) -> None:
        """Make :meth:`read` return None promptly (safe to call from a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=self.open_timeout + 2.0)
            self._thread = None


def parse_camera(spec: str) -> Optional[int]:
    """The camera index a source string names (``webcam`` -> 0, ``"2"`` -> 2), else None."""
    text = str(spec).strip()
    if text.lower() in ("webcam", "camera", "cam"):
        return 0
    if text.isdigit():
        return int(text)
    return None


def is_network_url(spec: str) -> bool:
    """True when ``spec`` is a URL with a scheme opened as a live network stream."""
    scheme, sep, _ = str(spec).partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES


def open_source(
    spec,
    *,
    prefetch: int = 4,
    image_fps: float = FALLBACK_FPS,
    reconnect_initial_delay: float = 0.5,
    reconnect_max_delay: float = 10.0,
    reconnect_max_attempts: int = 0,
    open_timeout: float = 10.0,
) -> Source:
    """Open what the user named as a source.

    Parameters
    ----------
    spec : str or int
        ``webcam`` (camera 0), a camera index, a video file, an image file,
        a folder of images, or a network URL (``rtsp://``, ``rtmp://``,
        ``http(s)://`` including HLS ``.m3u8``, ``udp://``, ``srt://``, ...).
    prefetch : int
        Frames decoded ahead for files and folders (>= 1).
    image_fps : float
        Frame rate given to image folders (> 0).
    reconnect_initial_delay, reconnect_max_delay, reconnect_max_attempts, open_timeout
        Network stream reconnection, see :class:`LiveSource`.

    Raises
    ------
    SourceError
        When the camera, file, folder or stream cannot be opened.
    """
    if isinstance(spec, int):
        camera: Optional[int] = spec
    else:
        camera = parse_camera(spec)
    if camera is not None:
        return LiveSource(camera, description=f"camera {camera}", reconnect=False, open_timeout=open_timeout)
    spec = str(spec)
    if is_network_url(spec):
        return LiveSource(spec, reconnect=True, reconnect_initial_delay=reconnect_initial_delay,
                          reconnect_max_delay=reconnect_max_delay,
                          reconnect_max_attempts=reconnect_max_attempts, open_timeout=open_timeout)
    if "://" in spec:
        raise SourceError(f"unsupported URL scheme in {spec!r} (use one of: {', '.join(NETWORK_SCHEMES)})")
    path = Path(os.path.expanduser(spec))
    if not path.exists():
        raise SourceError(f"no such file or directory: {spec}")
    if path.is_dir():
        return ImageFolderSource.from_folder(path, fps=image_fps, prefetch=prefetch)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageFolderSource([path], fps=image_fps, prefetch=prefetch, description=str(path))
    return VideoFileSource(path, prefetch=prefetch)
