"""Appearances (events) and per-frame track rows, written as they happen.

An *appearance* is one uninterrupted stretch of a confirmed track on screen.
It ends when the tracker moves the track to its lost buffer
(``tracker.lost_ids``), when the track is deleted (``tracker.ended_ids``), or
when the run ends. A lost track that comes back starts a new appearance with
the same id. :class:`AppearanceLog` turns per-frame results into finished
appearances; :class:`EventWriter` writes them as JSON lines,
:class:`TracksWriter` writes MOTChallenge rows and :class:`NamesWriter` the
name shown for each of those rows, all flushed line by line so an
interrupted run keeps everything written so far. A failed write (a full
disk, ``/dev/full``, a removed mount) raises :class:`OutputError` at once,
naming the file and the cause. :class:`FrameWriters` hands
every frame to several per-frame writers (the run loop takes one).

The tracks and names files are what ``python -m evaluation score --tracks
tracks.txt --names names.csv`` reads: the names file gives the name on
screen on every frame, where events only give the name at the end of each
appearance.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

logger = logging.getLogger(__name__)


@dataclass
class Appearance:
    """One appearance of a track.

    Attributes
    ----------
    track_id : int
    name : str or None
        The identity at the end of the appearance (None = unknown).
    score : float or None
        Cosine similarity behind ``name`` (None when unknown and no score).
    first_frame, last_frame : int
        Frame indices (0-based) of the first and last frame it was on screen.
    first_time, last_time : float
        Their timestamps in seconds.
    frames_seen : int
        Frames it was on screen (including frames drawn from the Kalman prediction
        between detections).
    """

    track_id: int
    name: Optional[str]
    score: Optional[float]
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    frames_seen: int

    def to_dict(self) -> dict:
        return asdict(self)


class AppearanceLog:
    """Follow appearances across frames.

    Call :meth:`update` once per frame with the frame's result; it returns the
    appearances that ended on that frame. :meth:`finish` ends the open ones.
    """

    def __init__(self) -> None:
        self._open: Dict[int, Appearance] = {}
        #: Names of everyone named at least once, and the number of appearances.
        self.names_seen: set = set()
        self.appearances = 0

    def update(self, result) -> List[Appearance]:
        """Record one frame.

        Parameters
        ----------
        result : FrameResult
            Needs ``frame_index``, ``timestamp``, ``track_ids``, ``names``,
            ``scores``, ``lost_ids`` and ``ended_ids``.
        """
        ended: List[Appearance] = []
        gone = set(int(i) for i in result.lost_ids) | set(int(i) for i in result.ended_ids)
        shown = {int(t) for t in result.track_ids}
        for track_id in sorted(gone - shown):
            app = self._open.pop(track_id, None)
            if app is not None:
                ended.append(app)
        for track_id, name, score in zip(result.track_ids, result.names, result.scores):
            track_id = int(track_id)
            app = self._open.get(track_id)
            score = None if score is None or score != score else float(score)
            if app is None:
                app = Appearance(track_id, name, score, result.frame_index, result.frame_index,
                                 float(result.timestamp), float(result.timestamp), 0)
                self._open[track_id] = app
                self.appearances += 1
            app.name = name
            app.score = score
            app.last_frame = result.frame_index
            app.last_time = float(result.timestamp)
            app.frames_seen += 1
            if name:
                self.names_seen.add(name)
        return ended

    def finish(self) -> List[Appearance]:
        """End every open appearance (at the end of the run)."""
        ended = [self._open[k] for k in sorted(self._open)]
        self._open.clear()
        return ended


def _check_output_path(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"cannot write {what} {path}: the folder {parent} does not exist")
    if path.is_dir():
        raise OSError(f"cannot write {what} {path}: it is a folder")


class OutputError(RuntimeError):
    """An output (video, events, tracks, names, re-stream) cannot be written; the message names it and why.

    The run loop stops on it, closes the other outputs and reports it (see :mod:`pipeline.loop`).
    """


def describe_os_error(exc: OSError) -> str:
    """The cause of an ``OSError`` in words (``No space left on device``), without the errno noise."""
    return exc.strerror or str(exc) or type(exc).__name__


class _LineWriter:
    """A text file written line by line, each line straight to the file (``path``, ``close()``).

    There is no buffer: every line is one ``write`` to the file descriptor, so
    a failure is seen on the line that failed. Then the file is cut back to
    its last complete line (where the file system allows it) and
    :class:`OutputError` is raised, now and on every later write.

    Parameters
    ----------
    path : str or Path
        The output file (overwritten).
    """

    what = "output"

    def __init__(self, path) -> None:
        self.path = Path(path)
        _check_output_path(self.path, self.what)
        self._file = open(self.path, "wb", buffering=0)
        #: Lines written, a header not counted.
        self.lines = 0
        self._good_bytes = 0
        self._failed: Optional[str] = None

    def _write_line(self, text: str) -> None:
        self._write_text(text + "\n")
        self.lines += 1

    def _write_text(self, text: str) -> None:
        if self._failed is not None:
            raise OutputError(self._failed)
        data = memoryview(text.encode("utf-8"))
        try:
            while data:
                written = self._file.write(data)
                data = data[written:]
        except OSError as exc:
            raise self._fail(exc) from None
        self._good_bytes += len(text.encode("utf-8"))

    def _fail(self, exc: OSError) -> OutputError:
        kept = ""
        try:
            if self.path.is_file():
                os.truncate(self.path, self._good_bytes)      # no half line at the end
                kept = f" (the file keeps its {self.lines} complete lines)"
        except OSError:
            kept = " (its last line may be cut short)"
        self._failed = f"cannot write {self.what} {self.path}: {describe_os_error(exc)}{kept}"
        return OutputError(self._failed)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class EventWriter(_LineWriter):
    """Write appearances as JSON lines, one object per line, flushed per line (``path``: the file)."""

    what = "events"

    def write(self, appearances: Iterable[Appearance]) -> None:
        for app in appearances:
            self._write_line(json.dumps(app.to_dict()))


class TracksWriter(_LineWriter):
    """Write MOTChallenge-style rows ``frame,id,x,y,w,h,score,-1,-1,-1`` to ``path``.

    ``frame`` is 1-based as in MOTChallenge; ``x, y, w, h`` is the ``tlwh``
    box in pixels and ``score`` the detection confidence.
    """

    what = "tracks"

    def write(self, result) -> None:
        """Write the rows of one frame (``frame_index``, ``track_ids``, ``xyxy``, ``confidence``)."""
        frame = int(result.frame_index) + 1
        for track_id, box, conf in zip(result.track_ids, result.xyxy, result.confidence):
            x1, y1, x2, y2 = (float(v) for v in box)
            self._write_line(f"{frame},{int(track_id)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                             f"{float(conf):.4f},-1,-1,-1")


class NamesWriter(_LineWriter):
    """Write the name shown for each track on each frame to ``path``: CSV ``frame,track_id,name``.

    One row per row of :class:`TracksWriter` (same ``frame``, 1-based, and
    ``track_id``), after a header line; ``name`` is empty for Unknown. This is
    the ``--names`` file of ``python -m evaluation score``
    (:func:`evaluation.gt.read_names`).
    """

    what = "names"
    HEADER = ("frame", "track_id", "name")

    def __init__(self, path) -> None:
        super().__init__(path)
        self._row = _CsvRow()
        self._write_text(self._row(self.HEADER))

    def write(self, result) -> None:
        """Write the rows of one frame (``frame_index``, ``track_ids``, ``names``)."""
        frame = int(result.frame_index) + 1
        for track_id, name in zip(result.track_ids, result.names):
            self._write_text(self._row((frame, int(track_id), name or "")))
            self.lines += 1


class _CsvRow:
    """One CSV row as text (``csv`` quoting), so every write goes through one checked path."""

    def __init__(self) -> None:
        import io

        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")

    def __call__(self, row) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(row)
        return self._buffer.getvalue()


class FrameWriters:
    """Several per-frame writers (:class:`TracksWriter`, :class:`NamesWriter`) as one.

    ``write(result)`` goes to each writer in order; ``close()`` closes every
    one (the first error is raised after all are closed).
    """

    def __init__(self, *writers) -> None:
        self.writers = [w for w in writers if w is not None]

    def write(self, result) -> None:
        for writer in self.writers:
            writer.write(result)

    def close(self) -> None:
        errors = close_all(self.writers)
        if errors:
            raise errors[0]


def close_all(closables) -> list:
    """Close every one of ``closables``, even after one fails; returns the errors, first first."""
    errors = []
    for item in closables:
        try:
            item.close()
        except Exception as exc:  # noqa: BLE001 - close the others, report afterwards
            errors.append(exc)
    return errors
