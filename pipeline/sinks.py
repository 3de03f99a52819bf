"""Frame sinks: an on-screen window, a video file, and a re-stream through ffmpeg.

Every sink has ``write(frame_bgr) -> bool`` (False asks the run to stop, e.g.
the window was closed or ``q`` pressed) and ``close()``, which must leave the
output complete (a playable file, a terminated stream) even when the run was
interrupted. :func:`make_output_sink` picks the sink for a ``--output`` path
or URL.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

#: File extensions written directly with OpenCV's VideoWriter, and their codec.
VIDEO_FILE_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
#: Output URL schemes and the container ffmpeg muxes them into.
STREAM_FORMATS = {"rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp", "udp": "mpegts", "tcp": "mpegts",
                  "srt": "mpegts", "http": "mpegts", "https": "mpegts"}
#: Keys that stop the run when the window has focus (q, Q, Esc).
QUIT_KEYS = (ord("q"), ord("Q"), 27)


class SinkError(RuntimeError):
    """An output cannot be opened or written; the message says which and why."""


class Sink:
    """Base class of all sinks."""

    def write(self, frame_bgr: np.ndarray) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (idempotent)."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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

    Parameters
    ----------
    title : str
        Window title.
    """

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


def _check_writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"cannot write {path}: the folder {parent} does not exist")
    if path.is_dir():
        raise SinkError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"cannot write {path}: the folder {parent} is not writable")


class VideoFileSink(Sink):
    """Write frames to a video file at the source's frame rate and size.

    Frames of another size are resized to the first frame's size. The file is
    finalised by :meth:`close` (also on Ctrl-C, which the run loop turns into
    a normal close), so it stays playable.

    Parameters
    ----------
    path : str or Path
        Output file; the extension picks the codec (see ``VIDEO_FILE_CODECS``).
    fps : float
        Frame rate written into the file (> 0).
    """

    def __init__(self, path, *, fps: float) -> None:
        self.path = Path(path)
        fps = check_number("fps", fps, 0, low_open=True)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FILE_CODECS:
            raise SinkError(f"cannot write {self.path}: unknown video extension {suffix or '(none)'} "
                            f"(use one of {', '.join(sorted(VIDEO_FILE_CODECS))})")
        _check_writable(self.path)
        self.fps = float(fps)
        self._fourcc = cv2.VideoWriter_fourcc(*VIDEO_FILE_CODECS[suffix])
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[tuple] = None
        self.frames_written = 0

    def write(self, frame_bgr: np.ndarray) -> bool:
        h, w = frame_bgr.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self.path), self._fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise SinkError(f"cannot open {self.path} for writing (codec not available?)")
        elif (w, h) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(frame_bgr))
        self.frames_written += 1
        return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            logger.info("wrote %d frames to %s", self.frames_written, self.path)


def ffmpeg_executable() -> str:
    """The path of ``ffmpeg``, or a :class:`SinkError` saying how to install it."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SinkError("ffmpeg is not installed: it is needed for re-streaming "
                        "(Debian/Ubuntu: apt-get install ffmpeg)")
    return exe


def ffmpeg_output_args(target: str, fps: float) -> List[str]:
    """The ffmpeg output options for a stream URL or an HLS playlist path."""
    scheme, sep, _ = target.partition("://")
    gop = str(max(1, int(round(fps * 2))))
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
              "-g", gop]
    if target.lower().endswith(".m3u8") and not sep:
        return encode + ["-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
                         "-hls_flags", "delete_segments+append_list", target]
    if not sep or scheme.lower() not in STREAM_FORMATS:
        raise SinkError(f"cannot stream to {target!r}: use rtmp://, rtsp://, udp://, srt://, tcp://, http:// "
                        f"or a .m3u8 path")
    fmt = STREAM_FORMATS[scheme.lower()]
    extra = ["-rtsp_transport", "tcp"] if fmt == "rtsp" else []
    return encode + ["-f", fmt] + extra + [target]


class FFmpegStreamSink(Sink):
    """Re-stream frames through an ``ffmpeg`` subprocess (RTMP, RTSP, UDP, SRT, HLS).

    Raw BGR frames go to ffmpeg's stdin; ffmpeg encodes H.264 with low-latency
    settings and muxes for the target. :meth:`close` closes stdin so ffmpeg
    finishes the stream (and the HLS playlist) cleanly.

    Parameters
    ----------
    target : str
        A stream URL (``rtmp://host/app/key``, ``rtsp://...``, ``udp://host:port``,
        ``srt://...``) or an HLS playlist path ending in ``.m3u8``.
    fps : float
        Frame rate of the stream (> 0).
    """

    def __init__(self, target: str, *, fps: float) -> None:
        fps = check_number("fps", fps, 0, low_open=True)
        self.target = str(target)
        self.fps = float(fps)
        self._args = ffmpeg_output_args(self.target, self.fps)
        if "://" not in self.target:
            _check_writable(Path(self.target))
        self._exe = ffmpeg_executable()
        self._proc: Optional[subprocess.Popen] = None
        self._size: Optional[tuple] = None
        self._stderr_tail: deque = deque(maxlen=20)
        self.frames_written = 0

    def _start(self, width: int, height: int) -> None:
        cmd = [self._exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{self.fps:g}",
               "-i", "pipe:0"] + self._args
        logger.info("streaming to %s: %s", self.target, " ".join(cmd))
        # A session of its own: Ctrl-C in the terminal reaches only us, and close()
        # then ends the stream cleanly instead of ffmpeg dying half-way.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=self._drain, args=(self._proc.stderr,), daemon=True).start()

    def _drain(self, stream) -> None:
        for line in iter(stream.readline, b""):
            text = line.decode(errors="replace").rstrip()
            self._stderr_tail.append(text)
            logger.debug("ffmpeg: %s", text)

    def write(self, frame_bgr: np.ndarray) -> bool:
        h, w = frame_bgr.shape[:2]
        if self._proc is None:
            # libx264 with yuv420p needs even dimensions.
            self._size = (w - w % 2, h - h % 2)
            self._start(*self._size)
        if (w, h) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size, interpolation=cv2.INTER_AREA)
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame_bgr).tobytes())
        except (BrokenPipeError, OSError) as exc:
            self._proc.wait(timeout=5)
            tail = " | ".join(self._stderr_tail) or f"exit status {self._proc.returncode}"
            raise SinkError(f"ffmpeg stopped streaming to {self.target}: {tail}") from exc
        self.frames_written += 1
        return True

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            logger.warning("ffmpeg did not finish in 15 s; terminating it")
            proc.terminate()
            proc.wait(timeout=5)


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


def make_output_sink(target: str, *, fps: float, background: bool = True) -> Sink:
    """A :class:`VideoFileSink` for a video file path, else a :class:`FFmpegStreamSink`;
    wrapped in a :class:`BackgroundSink` when ``background``."""
    sink: Sink = FFmpegStreamSink(target, fps=fps) if is_stream_target(target) else VideoFileSink(target, fps=fps)
    return BackgroundSink(sink) if background else sink
