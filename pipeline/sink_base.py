"""What every frame sink is: :class:`Sink`, :class:`SinkError`, and what the ffmpeg sinks share.

The sinks are in :mod:`pipeline.sinks` (window, background), :mod:`pipeline.video_file`
(video files) and :mod:`pipeline.restream` (re-streaming); every name is importable
from :mod:`pipeline.sinks`.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
from collections import deque
from pathlib import Path

import numpy as np

from pipeline.events import OutputError

logger = logging.getLogger(__name__)


class SinkError(OutputError):
    """An output cannot be opened or written; the message says which and why."""


class Sink:
    """Base class of all sinks.

    ``live_view`` is True for a sink a person watches live (the window): only those get the
    FPS readout, unless the overlay burns it into every output (``Overlay.burn_fps``).
    ``main_thread_only`` is True for a sink whose ``write`` must run in the main thread (GUI
    calls): the run loop then writes every sink from its own thread (no output overlap).
    """

    live_view = False
    main_thread_only = False

    def write(self, frame_bgr: np.ndarray) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (idempotent)."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"cannot write {path}: the folder {parent} does not exist")
    if path.is_dir():
        raise SinkError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"cannot write {path}: the folder {parent} is not writable")


def ffmpeg_executable() -> str:
    """The path of ``ffmpeg``, or a :class:`SinkError` saying how to install it."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SinkError("ffmpeg is not installed: it is needed for re-streaming "
                        "(Debian/Ubuntu: apt-get install ffmpeg)")
    return exe


@functools.lru_cache(maxsize=None)
def ffmpeg_has_encoder(exe: str, name: str) -> bool:
    """True when the ffmpeg at ``exe`` lists the encoder ``name`` (``libx264``); asked once per pair."""
    import subprocess

    try:
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.startswith(" "))


def drain_into(stream, tail: deque) -> None:
    """Read an ffmpeg's stderr into ``tail`` (its last lines), logging them at debug level."""
    for line in iter(stream.readline, b""):
        text = line.decode(errors="replace").rstrip()
        tail.append(text)
        logger.debug("ffmpeg: %s", text)


def reap(proc) -> None:
    """Wait for an ffmpeg that stopped (killing it after 5 s), then let its stderr thread take the last lines."""
    import subprocess
    import time

    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    time.sleep(0.05)


def finish(proc, timeout: float, what: str) -> None:
    """Close ffmpeg's input and wait ``timeout`` s for it to finish ``what``; terminate it after that."""
    import subprocess

    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        logger.warning("ffmpeg did not finish %s in %g s; terminating it", what, timeout)
        proc.terminate()
        proc.wait(timeout=5)


def ffmpeg_cause(tail, returncode, exc) -> str:
    """Why an ffmpeg stopped, in words: the OS error in its messages when there is one."""
    text = " | ".join(t for t in tail if t)
    for known in ("No space left on device", "Disk quota exceeded", "Read-only file system",
                  "Permission denied", "Input/output error"):
        if known in text:
            return known
    if text:
        return text[-300:]
    if exc is not None and getattr(exc, "strerror", None) and not isinstance(exc, BrokenPipeError):
        return exc.strerror
    return f"ffmpeg exited with status {returncode}"


