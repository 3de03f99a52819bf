"""Video files, written so that an abrupt end loses at most the last second.

Video files and an abrupt end
-----------------------------
With ``ffmpeg`` installed, :class:`VideoFileSink` writes through an ffmpeg
process of its own session, in containers that are readable while they grow
(:data:`CRASH_SAFE_FORMATS`), with a key frame every second. MP4, MOV and MKV
hold H.264 (``libx264``, ``yuv420p``, odd frame sizes padded by one pixel to
even), which browsers play; where ffmpeg has no ``libx264`` they hold
MPEG-4 Part 2 (``mpeg4``) instead, with a warning. The encoder runs without
look-ahead or B-frames (``-tune zerolatency``), so every frame it was given
is in the file as soon as its fragment or cluster closes:

* ``.mp4``, ``.m4v``, ``.mov``: fragmented MP4 (``-movflags
  frag_keyframe+empty_moov``), one fragment per second. An abrupt end (the
  process killed, the machine off) loses the open fragment: at most the last
  second.
* ``.mkv``: Matroska, one cluster per second; the same loss.
* ``.avi``: MJPEG in AVI; every frame written stays readable, only the index
  is missing (players and OpenCV read it without).

When our process is killed (``SIGKILL``), ffmpeg sees the end of its input
and still finishes the file; when ffmpeg itself is killed, the file keeps
every closed fragment. Without ffmpeg, OpenCV's ``VideoWriter`` writes
``mp4v`` / ``MJPG``: an MP4 written that way is unreadable after an abrupt
end, and a full disk is found only by watching the free space.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from pipeline.sink_base import (Sink, SinkError, check_writable, drain_into, ffmpeg_cause, ffmpeg_executable,
                                ffmpeg_has_encoder, finish, reap)
from tracker.checks import check_number

logger = logging.getLogger(__name__)

#: File extensions and the codec OpenCV's VideoWriter writes them with (without ffmpeg).
VIDEO_FILE_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
#: ffmpeg encoder and the muxer options of each file extension (see the module doc); ``h264``
#: is :data:`H264_ENCODER` where ffmpeg has it, else :data:`FALLBACK_ENCODER`.
CRASH_SAFE_FORMATS = {
    ".mp4": ("h264", ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]),
    ".m4v": ("h264", ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]),
    ".mov": ("h264", ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]),
    ".mkv": ("h264", ["-cluster_time_limit", "1000"]),
    ".avi": ("mjpeg", ["-pix_fmt", "yuvj420p", "-q:v", "4"]),
}
#: The H.264 encoder and its options: no look-ahead and no B-frames, so nothing waits in the encoder.
H264_ENCODER = ("libx264", ["-preset", "veryfast", "-tune", "zerolatency", "-crf", "23", "-pix_fmt", "yuv420p"])
#: Used for ``h264`` when ffmpeg has no ``libx264``: MPEG-4 Part 2 (``mp4v``), which fewer players play.
FALLBACK_ENCODER = ("mpeg4", ["-q:v", "4", "-pix_fmt", "yuv420p"])
#: Longest gap (seconds) a clock-paced video fills with copies of the last frame.
MAX_PACING_GAP_SECONDS = 60.0

class VideoFileSink(Sink):
    """Write frames to a video file at the source's frame rate and size.

    Frames of another size are resized to the first frame's size. The file is
    finalised by :meth:`close` (also on Ctrl-C or ``SIGTERM``, which the run
    loop turns into a normal close), and with ffmpeg it stays readable up to
    its last second even when the process dies (see the module doc).

    Parameters
    ----------
    path : str or Path
        Output file; the extension picks the container (see ``VIDEO_FILE_CODECS``).
    fps : float
        Frame rate written into the file (> 0).
    pace_to_clock : bool
        For live sources: repeat each frame so the video lasts as long as the
        run did (the run processes fewer frames per second than the stream
        has), at most :data:`MAX_PACING_GAP_SECONDS` per gap.
    backend : str
        ``auto`` (ffmpeg when installed, else OpenCV), ``ffmpeg`` or ``opencv``.
    clock : callable
        Seconds, for ``pace_to_clock`` (a test passes a fake).
    """

    def __init__(self, path, *, fps: float, pace_to_clock: bool = False, backend: str = "auto",
                 clock=time.monotonic) -> None:
        self.path = Path(path)
        fps = check_number("fps", fps, 0, low_open=True)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FILE_CODECS:
            raise SinkError(f"cannot write {self.path}: unknown video extension {suffix or '(none)'} "
                            f"(use one of {', '.join(sorted(VIDEO_FILE_CODECS))})")
        if backend not in ("auto", "ffmpeg", "opencv"):
            raise ValueError(f"backend must be auto, ffmpeg or opencv, got {backend!r}")
        check_writable(self.path)
        self.fps = float(fps)
        exe = shutil.which("ffmpeg") if backend != "opencv" else None
        if backend == "ffmpeg" and exe is None:
            ffmpeg_executable()
        #: ``ffmpeg`` or ``opencv``: what writes the file.
        self.backend = "ffmpeg" if exe else "opencv"
        self._exe = exe
        self._fourcc = cv2.VideoWriter_fourcc(*VIDEO_FILE_CODECS[suffix])
        self._writer: Optional[cv2.VideoWriter] = None
        self._proc: Optional[subprocess.Popen] = None
        self._stderr_tail: deque = deque(maxlen=20)
        self._size: Optional[tuple] = None
        self.pace_to_clock = bool(pace_to_clock)
        self._clock = clock
        self._t0: Optional[float] = None
        self._failed: Optional[str] = None
        self.frames_written = 0

    # -- opening -------------------------------------------------------------------
    def _open(self, w: int, h: int) -> None:
        self._size = (w, h)
        if self.backend == "ffmpeg":
            self._start_ffmpeg(w, h)
            return
        self._writer = cv2.VideoWriter(str(self.path), self._fourcc, self.fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            raise SinkError(f"cannot open {self.path} for writing (codec not available?)")

    def _start_ffmpeg(self, w: int, h: int) -> None:
        codec, muxer = CRASH_SAFE_FORMATS[self.path.suffix.lower()]
        encode = ["-c:v", codec]
        if codec == "h264":
            name, options = H264_ENCODER if ffmpeg_has_encoder(self._exe, H264_ENCODER[0]) else FALLBACK_ENCODER
            if name != H264_ENCODER[0]:
                logger.warning("ffmpeg has no %s encoder: writing %s as MPEG-4 Part 2, which browsers do not "
                               "play (install an ffmpeg built with libx264)", H264_ENCODER[0], self.path)
            encode = ["-c:v", name, *options]
        gop = str(max(1, int(round(self.fps))))                 # a key frame (and a fragment) per second
        cmd = [self._exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{self.fps:g}", "-i", "pipe:0",
               # yuv420p needs even sizes: pad by one pixel where needed (the frame keeps its pixels)
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
               *encode, "-g", gop, *muxer, "-flush_packets", "1", str(self.path)]
        logger.info("writing %s: %s", self.path, " ".join(cmd))
        # A session of its own: Ctrl-C in the terminal reaches only us, and when we are killed
        # ffmpeg sees the end of its input and still finishes the file.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=drain_into, args=(self._proc.stderr, self._stderr_tail), daemon=True).start()

    # -- writing -------------------------------------------------------------------
    def write(self, frame_bgr: np.ndarray) -> bool:
        if self._failed is not None:
            raise SinkError(self._failed)
        h, w = frame_bgr.shape[:2]
        if self._size is None:
            self._open(w, h)
        elif (w, h) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size, interpolation=cv2.INTER_AREA)
        frame = np.ascontiguousarray(frame_bgr)
        for _ in range(self._copies()):
            self._write_one(frame)
        return True

    def _copies(self) -> int:
        """How many times this frame goes into the file (1, or more to follow the clock)."""
        if not self.pace_to_clock:
            return 1
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
            return 1
        due = int((now - self._t0) * self.fps + 1e-6) + 1 - self.frames_written
        return int(min(max(due, 1), MAX_PACING_GAP_SECONDS * self.fps))

    def _write_one(self, frame: np.ndarray) -> None:
        if self._proc is not None:
            try:
                self._proc.stdin.write(frame.tobytes())
            except (BrokenPipeError, OSError) as exc:
                raise self._fail(exc) from None
        else:
            self._writer.write(frame)
            if self.frames_written % max(1, int(round(self.fps))) == 0:
                self._check_space()
        self.frames_written += 1

    def _check_space(self) -> None:
        """OpenCV reports no write error: a full file system is found by its free space."""
        try:
            free = os.statvfs(self.path.parent if str(self.path.parent) else ".").f_bavail
        except OSError:
            return
        if free == 0:
            self._failed = (f"cannot write video {self.path}: No space left on device "
                            f"(stopped after {self.frames_written} frames; the file is likely unreadable "
                            "without ffmpeg's crash-safe container)")
            raise SinkError(self._failed)

    def _fail(self, exc: BaseException) -> SinkError:
        proc = self._proc
        reap(proc)
        cause = ffmpeg_cause(self._stderr_tail, proc.returncode, exc)
        self._failed = (f"cannot write video {self.path}: {cause} (it holds the frames written up to about "
                        f"frame {self.frames_written}, less the last second)")
        return SinkError(self._failed)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            finish(proc, 30, str(self.path))
            time.sleep(0.05)
            if proc.returncode != 0 and self._failed is None:
                self._failed = (f"cannot finish video {self.path}: "
                                f"{ffmpeg_cause(self._stderr_tail, proc.returncode, None)}")
                raise SinkError(self._failed)
            logger.info("wrote %d frames to %s", self.frames_written, self.path)
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            logger.info("wrote %d frames to %s", self.frames_written, self.path)


