"""Re-streaming through ffmpeg: RTMP, RTSP, UDP, SRT, HTTP and HLS, reopened when a stream drops."""
from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from pipeline.sink_base import Sink, SinkError, check_writable, drain_into, finish, reap, ffmpeg_executable
from tracker.checks import check_number

logger = logging.getLogger(__name__)

#: Output URL schemes and the container ffmpeg muxes them into.
STREAM_FORMATS = {"rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp", "udp": "mpegts", "tcp": "mpegts",
                  "srt": "mpegts", "http": "mpegts", "https": "mpegts"}
#: A re-stream that ran this long before it dropped is reopened (one that fails sooner is an error).
STREAM_SETTLE_SECONDS = 2.0

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

    A stream that worked for :data:`STREAM_SETTLE_SECONDS` and then drops
    (the server restarted) is reopened as sources are: with the exponential
    backoff of ``reconnect`` (frames in between are not sent, and counted in
    ``frames_dropped``). A target that fails before that, and an HLS playlist
    that cannot be written, raise :class:`SinkError`.

    Parameters
    ----------
    target : str
        A stream URL (``rtmp://host/app/key``, ``rtsp://...``, ``udp://host:port``,
        ``srt://...``) or an HLS playlist path ending in ``.m3u8``.
    fps : float
        Frame rate of the stream (> 0).
    reconnect : ReconnectPolicy or None
        How to reopen a dropped stream URL (default: the sources' default
        policy); None raises on the first drop.
    clock : callable
        Seconds (a test passes a fake).
    """

    def __init__(self, target: str, *, fps: float, reconnect="default", clock=time.monotonic) -> None:
        from pipeline.live_source import ReconnectPolicy

        fps = check_number("fps", fps, 0, low_open=True)
        self.target = str(target)
        self.fps = float(fps)
        self._args = ffmpeg_output_args(self.target, self.fps)
        if "://" not in self.target:
            check_writable(Path(self.target))
            reconnect = None                              # a file: a failure is a write error
        elif reconnect == "default":
            reconnect = ReconnectPolicy()
        if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
            raise ValueError(f"reconnect must be a ReconnectPolicy or None, got {reconnect!r}")
        self.reconnect = reconnect
        self._clock = clock
        self._exe = ffmpeg_executable()
        self._proc: Optional[subprocess.Popen] = None
        self._started_at = 0.0
        self._size: Optional[tuple] = None
        self._stderr_tail: deque = deque(maxlen=20)
        self._retry_at: Optional[float] = None
        self._delays = None
        self._attempts = 0
        self.frames_written = 0
        #: Frames not sent while the stream was being reopened; and how many times it was.
        self.frames_dropped = 0
        self.reconnects = 0

    def _start(self, width: int, height: int) -> None:
        cmd = [self._exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{self.fps:g}",
               "-i", "pipe:0"] + self._args
        logger.info("streaming to %s: %s", self.target, " ".join(cmd))
        self._stderr_tail.clear()
        # A session of its own: Ctrl-C in the terminal reaches only us, and close()
        # then ends the stream cleanly instead of ffmpeg dying half-way.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        self._started_at = self._clock()
        threading.Thread(target=drain_into, args=(self._proc.stderr, self._stderr_tail), daemon=True).start()

    def write(self, frame_bgr: np.ndarray) -> bool:
        h, w = frame_bgr.shape[:2]
        if self._size is None:
            # libx264 with yuv420p needs even dimensions.
            self._size = (w - w % 2, h - h % 2)
            self._start(*self._size)
        if self._proc is None:                            # reopening a dropped stream
            if self._clock() < self._retry_at:
                self.frames_dropped += 1
                return True
            self._start(*self._size)
        if (w, h) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size, interpolation=cv2.INTER_AREA)
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame_bgr).tobytes())
        except (BrokenPipeError, OSError) as exc:
            self._dropped(exc)
            self.frames_dropped += 1
            return True
        self.frames_written += 1
        if self._attempts and self._clock() - self._started_at >= STREAM_SETTLE_SECONDS:
            logger.warning("re-stream to %s is back after %d attempt(s)", self.target, self._attempts)
            self._attempts, self._delays = 0, None
        return True

    def _dropped(self, exc: BaseException) -> None:
        """ffmpeg stopped: raise, or plan the next attempt (a stream that had worked)."""
        proc, self._proc = self._proc, None
        reap(proc)
        tail = " | ".join(self._stderr_tail) or f"exit status {proc.returncode}"
        worked = self._clock() - self._started_at >= STREAM_SETTLE_SECONDS or self._attempts > 0
        if self.reconnect is None or not worked or self.reconnect.gives_up(self._attempts):
            what = "gave up reconnecting to" if self._attempts else "ffmpeg stopped streaming to"
            raise SinkError(f"{what} {self.target}: {tail}") from exc
        if self._delays is None:
            self._delays = self.reconnect.delays()
        delay = next(self._delays)
        self._attempts += 1
        self.reconnects += 1
        self._retry_at = self._clock() + delay
        logger.warning("re-stream to %s dropped (%s); reopening in %.1f s", self.target, tail, delay)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        finish(proc, 15, self.target)


