"""Frame sinks: an on-screen window, a video file, and a re-stream through ffmpeg.

Every sink has ``write(frame_bgr) -> bool`` (False asks the run to stop, e.g.
the window was closed or ``q`` pressed) and ``close()``, which must leave the
output complete (a playable file, a terminated stream) even when the run was
interrupted. :func:`make_output_sink` picks the sink for a ``--output`` path
or URL. A write that fails raises :class:`SinkError` (an
:class:`pipeline.events.OutputError`) naming the output and the cause.

Video files are written by :mod:`pipeline.video_file` (crash-safe containers through
ffmpeg, see there), re-streams by :mod:`pipeline.restream`.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Optional

import cv2
import numpy as np

# Re-exported: the command lines and the tests import every sink from here.
from pipeline.restream import (STREAM_FORMATS, STREAM_SETTLE_SECONDS, FFmpegStreamSink,  # noqa: F401
                               ffmpeg_output_args)
from pipeline.sink_base import Sink, SinkError, check_writable, ffmpeg_executable  # noqa: F401
from pipeline.video_file import (CRASH_SAFE_FORMATS, MAX_PACING_GAP_SECONDS, VIDEO_FILE_CODECS,  # noqa: F401
                                 VideoFileSink)
from tracker.checks import check_int

logger = logging.getLogger(__name__)

#: Keys that stop the run when the window has focus (q, Q, Esc).
QUIT_KEYS = (ord("q"), ord("Q"), 27)


def _x11_reachable(display: str) -> bool:
    """True when the X server named by ``display`` (``:0``, ``unix:1``, ``host:10.0``) accepts connections."""
    import socket

    host, _, rest = display.rpartition(":")
    try:
        number = int(rest.split(".")[0])
    except ValueError:
        return False
    if host in ("", "unix") or host.startswith("/"):
        path = host if host.startswith("/") else f"/tmp/.X11-unix/X{number}"
        if host.startswith("/"):
            return os.path.exists(host) or os.path.exists(f"{host}:{number}")
        if os.path.exists(path):
            return True
        host = "localhost" if host == "" else host
        if host == "unix":
            return False
    try:
        with socket.create_connection((host, 6000 + number), timeout=0.5):
            return True
    except OSError:
        return False


def display_available() -> bool:
    """True when a window can be shown.

    On Linux: ``WAYLAND_DISPLAY`` names a socket that exists, or ``DISPLAY``
    names an X server that accepts connections (Qt aborts the whole process
    when it cannot reach the display, so this is checked before any window).
    Elsewhere: always True.
    """
    if not sys.platform.startswith("linux"):
        return True
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland:
        path = wayland if wayland.startswith("/") else os.path.join(os.environ.get("XDG_RUNTIME_DIR", ""), wayland)
        if os.path.exists(path):
            return True
    display = os.environ.get("DISPLAY")
    return bool(display) and _x11_reachable(display)


class WindowSink(Sink):
    """Show frames in an OpenCV window; ``q``/Esc or closing the window stops the run.

    It is the live view: the run loop draws the FPS readout into its frames only.

    Parameters
    ----------
    title : str
        Window title.
    """

    live_view = True
    main_thread_only = True             # HighGUI windows belong to the main thread

    def __init__(self, title: str = "facetrack") -> None:
        self.title = title
        self._opened = False
        self._failed = False

    def write(self, frame_bgr: np.ndarray) -> bool:
        if self._failed:
            return True
        if not self._opened:
            try:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
                h, w = frame_bgr.shape[:2]
                cv2.resizeWindow(self.title, w, h)
            except cv2.error as exc:
                # A DISPLAY that cannot be reached, or an OpenCV built without GUI:
                # go on without the window rather than lose the other outputs.
                logger.warning("cannot open a window (%s); going on without it", str(exc).strip().splitlines()[-1])
                self._failed = True
                return True
            self._opened = True
        cv2.imshow(self.title, frame_bgr)
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS:
            return False
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return False
        except cv2.error:
            return False
        return True

    def close(self) -> None:
        if self._opened:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._opened = False


class BackgroundSink(Sink):
    """Run another sink's ``write`` in a thread, so encoding overlaps with the next frame.

    OpenCV's encoder and the pipe to ffmpeg release the GIL, so on a
    multi-core CPU the encode cost mostly leaves the frame loop. Frames are
    queued (not copied: the run loop hands over a new array every frame); a
    full queue blocks, so no frame is ever dropped. An error in the thread is
    raised by the next ``write`` or by ``close``.

    Parameters
    ----------
    sink : Sink
        The sink to drive (not a window: GUI calls must stay in the main thread).
    queue_size : int
        Frames that may wait for the encoder (>= 1).
    """

    _END = object()

    def __init__(self, sink: Sink, *, queue_size: int = 4) -> None:
        queue_size = check_int("queue_size", queue_size, 1)
        import queue

        self.sink = sink
        #: Seconds the thread spent in the wrapped sink's ``write`` (the encode cost).
        self.busy_seconds = 0.0
        self._queue: "queue.Queue" = queue.Queue(maxsize=int(queue_size))
        self._error: Optional[BaseException] = None
        self._failed = False                  # set once; the error is raised to the caller once
        self._thread = threading.Thread(target=self._work, name=f"sink:{type(sink).__name__}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is self._END:
                return
            if self._failed:
                continue                      # drain after a failure, never write again
            start = time.perf_counter()
            try:
                self.sink.write(frame)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc
                self._failed = True
            self.busy_seconds += time.perf_counter() - start

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, frame_bgr: np.ndarray) -> bool:
        self._raise()
        self._queue.put(frame_bgr)
        return True

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(self._END)
            self._thread.join()
            self._thread = None
            try:
                self._raise()
            finally:
                self.sink.close()


def is_stream_target(target: str) -> bool:
    """True when ``--output`` names a stream (a URL or an HLS ``.m3u8`` playlist) rather than a file."""
    return "://" in str(target) or str(target).lower().endswith(".m3u8")


def make_output_sink(target: str, *, fps: float, background: bool = True, live: bool = False) -> Sink:
    """A :class:`VideoFileSink` for a video file path, else a :class:`FFmpegStreamSink`;
    wrapped in a :class:`BackgroundSink` when ``background``. ``live``: the source is live, so a
    file follows the clock (``pace_to_clock``) and a network stream reconnects when it drops."""
    if is_stream_target(target):
        sink: Sink = FFmpegStreamSink(target, fps=fps)
    else:
        sink = VideoFileSink(target, fps=fps, pace_to_clock=live)
    return BackgroundSink(sink) if background else sink
