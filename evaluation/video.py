"""Video files for the evaluation sequences: OpenCV's mp4v, or H.264 through ffmpeg.

The default simulator sequences are written with OpenCV's ``mp4v`` writer
(MPEG-4 part 2 at OpenCV's quality). Broadcast-like sequences are encoded the
way a broadcaster's stream is: H.264 (``libx264``), 4:2:0 chroma, a fixed
bitrate of about 3 Mbit/s at 1280x720 (scaled by the pixel count) and a GOP
of one second. ffmpeg is found on ``PATH``; without it :func:`open_writer`
falls back to ``mp4v`` and says so (the codec actually used is returned, and
the sequence's ``synth.json`` records it).

x264 is run single-threaded so that one machine always writes the same bytes
for the same frames (its frame threads make the output depend on timing).
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: The bitrate of a broadcast-like 1280x720 H.264 stream (bits per second).
BROADCAST_BITRATE_720P = 3_000_000
#: Codec names accepted by :func:`open_writer`.
CODECS = ("mp4v", "h264")


def broadcast_bitrate(width: int, height: int, *, bitrate_720p: int = BROADCAST_BITRATE_720P) -> int:
    """``bitrate_720p`` scaled by the frame's pixel count relative to 1280x720."""
    return int(round(bitrate_720p * width * height / (1280 * 720)))


def ffmpeg_path() -> Optional[str]:
    """The ffmpeg executable on ``PATH``, or None."""
    return shutil.which("ffmpeg")


class FfmpegH264Writer:
    """Pipe BGR frames into ``ffmpeg -c:v libx264`` (``write`` / ``release``, like ``cv2.VideoWriter``).

    Parameters
    ----------
    path : Path
        The ``.mp4`` to write.
    fps : float
        Frame rate.
    size : (int, int)
        Width and height (even numbers: 4:2:0 needs them).
    bitrate : int
        Target bits per second (``-b:v``; ``-maxrate`` 1.5x, ``-bufsize`` 2x).
    ffmpeg : str
        The executable.
    """

    def __init__(self, path: Path, fps: float, size: Tuple[int, int], *, bitrate: int, ffmpeg: str) -> None:
        w, h = size
        if w % 2 or h % 2:
            raise ValueError(f"H.264 4:2:0 needs an even width and height, got {w}x{h}")
        if bitrate <= 0:
            raise ValueError(f"bitrate must be > 0, got {bitrate}")
        self.size = (int(w), int(h))
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-",
               "-an", "-c:v", "libx264", "-preset", "veryfast", "-threads", "1",
               "-b:v", str(bitrate), "-maxrate", str(int(bitrate * 1.5)), "-bufsize", str(int(bitrate * 2)),
               "-g", str(max(1, int(round(fps)))), "-pix_fmt", "yuv420p",
               "-fflags", "+bitexact", "-flags:v", "+bitexact", "-movflags", "+faststart", str(path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoWriter's name)
        return self._proc.poll() is None

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame."""
        if frame.shape[:2] != (self.size[1], self.size[0]):
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the video {self.size[0]}x{self.size[1]}")
        self._proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())

    def release(self) -> None:
        """Close the pipe and wait for ffmpeg; ``RuntimeError`` with its message if it failed."""
        if self._proc.stdin and not self._proc.stdin.closed:
            self._proc.stdin.close()
        err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        if self._proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed: {err.strip()}")


def open_writer(path: Path, fps: float, size: Tuple[int, int], *, codec: str = "mp4v",
                bitrate: Optional[int] = None):
    """A frame writer for ``path`` and the codec it really uses.

    Parameters
    ----------
    codec : str
        ``"mp4v"`` (OpenCV) or ``"h264"`` (ffmpeg, libx264).
    bitrate : int, optional
        For H.264; default :func:`broadcast_bitrate` of ``size``.

    Returns
    -------
    writer
        ``write(frame)`` / ``release()``.
    used : str
        ``"mp4v"``, ``"h264"``, or ``"mp4v (ffmpeg not found; h264 asked)"``
        when ffmpeg is missing.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    used = codec
    if codec == "h264":
        exe = ffmpeg_path()
        if exe is not None:
            return FfmpegH264Writer(path, fps, size, bitrate=bitrate or broadcast_bitrate(*size), ffmpeg=exe), used
        log.warning("ffmpeg not found on PATH: %s is written with OpenCV's mp4v instead of H.264", path)
        used = "mp4v (ffmpeg not found; h264 asked)"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, tuple(size))
    if not writer.isOpened():
        raise RuntimeError(f"cannot open a video writer for {path}")
    return writer, used
