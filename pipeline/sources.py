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
sentence when it cannot be opened. The base types are in
:mod:`pipeline.source_base` and the live sources in
:mod:`pipeline.live_source`; every name is importable from here too.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from models.io import read_image
# Re-exported: the run loop, the command lines and the tests import these from here.
from pipeline.live_source import LiveSource, ReconnectPolicy  # noqa: F401
from pipeline.source_base import FALLBACK_FPS, Frame, Source, SourceError, usable_fps  # noqa: F401
from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

#: URL schemes opened through OpenCV's FFmpeg backend as live network streams.
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp", "mms")
#: Frames a file may end short of its header's frame count without a warning (counts are estimates).
TRUNCATION_SLACK_FRAMES = 2
#: File name extensions read as still images (image folders and single images).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class _PrefetchingSource(Source):
    """A file-like source decoded one step ahead in a thread, never dropping frames."""

    def __init__(self, description: str, prefetch: int) -> None:
        super().__init__(description)
        self._queue: "queue.Queue[object]" = queue.Queue(maxsize=check_int("prefetch", prefetch, 1))
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
        self.fps = usable_fps(cap.get(cv2.CAP_PROP_FPS))
        self.height, self.width = first.shape[:2]
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self._pending: Optional[np.ndarray] = first
        #: Why the file ended before its announced length (empty while it has not).
        self.ended_early = ""
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
                self._note_early_end()
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

    def _note_early_end(self) -> None:
        """A file that ends well before the frame count of its header is truncated or damaged: say so."""
        if self.frame_count and self._index < self.frame_count - TRUNCATION_SLACK_FRAMES:
            self.ended_early = (f"{self.description} ended after {self._index} of the {self.frame_count} frames "
                                "its header announces (a truncated or damaged file?)")
            logger.warning("%s", self.ended_early)

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
        fps = check_number("fps", fps, 0, low_open=True)
        if not paths:
            raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.description}")
        self._paths: List[Path] = list(paths)
        first, errors = None, []
        for path in self._paths:          # the first readable image gives the size; bad ones are skipped later
            try:
                first = read_image(path)
                break
            except ValueError as exc:
                errors.append(str(exc))
        if first is None:
            raise SourceError(f"none of the {len(self._paths)} images can be read ({errors[0]})")
        self.fps = fps
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
    reconnect_initial_delay, reconnect_max_delay, reconnect_max_attempts
        Network stream reconnection, see :class:`ReconnectPolicy`.
    open_timeout
        Seconds allowed to open a camera or stream and to read one frame, see :class:`LiveSource`.

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
        return LiveSource(camera, description=f"camera {camera}", reconnect=None, open_timeout=open_timeout)
    spec = str(spec)
    if is_network_url(spec):
        policy = ReconnectPolicy(reconnect_initial_delay, reconnect_max_delay, reconnect_max_attempts)
        return LiveSource(spec, reconnect=policy, open_timeout=open_timeout)
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
