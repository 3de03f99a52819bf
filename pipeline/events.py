"""Events and per-frame track rows, written as they happen.

:class:`pipeline.appearances.AppearanceLog` follows appearances (one
uninterrupted stretch of a confirmed track on screen);
:class:`EventWriter` writes an ``appeared`` event when one starts and an
``ended`` event with the whole appearance when it ends, as JSON lines, with
a snapshot of the face beside the file and a copy to each event sink
(:mod:`pipeline.event_sinks`);
:class:`TracksWriter` writes MOTChallenge rows and :class:`NamesWriter` the
name shown for each of those rows, all flushed line by line so an
interrupted run keeps everything written so far. A failed write (a full
disk, ``/dev/full``, a removed mount) raises :class:`OutputError` at once,
naming the file and the cause. :class:`FrameWriters` hands
every frame to several per-frame writers (the run loop takes one).

The tracks and names files are what ``python -m evaluation score --tracks
tracks.txt --names names.csv`` reads: the names file gives the name on
screen on every frame, where ``ended`` events only give the name at the end
of each appearance.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence

# Re-exported: the run loop and the tests import the appearances from here.
from pipeline.appearances import EVENT_DECIMALS, Appearance, AppearanceLog, LogStep, wall_time  # noqa: F401
from tracker.checks import check_bool

logger = logging.getLogger(__name__)

#: Permission bits of the files written here (owner only).
PRIVATE_FILE_MODE = 0o600


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
    path : str or Path or None
        The output file (overwritten; created with mode 0600: names and boxes are biometric data);
        None writes nothing.
    """

    what = "output"

    def __init__(self, path) -> None:
        self.path = Path(path) if path is not None else None
        self._file = None
        if self.path is not None:
            _check_output_path(self.path, self.what)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
            if os.path.isfile(self.path):
                os.fchmod(fd, PRIVATE_FILE_MODE)
            self._file = os.fdopen(fd, "wb", buffering=0)
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
        if self._file is None:
            return
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
        if self._file is not None and not self._file.closed:
            self._file.close()


class EventWriter(_LineWriter):
    """Write events as JSON lines (one object per line, flushed per line) and hand each to event sinks.

    Every appearance gives an ``ended`` event (the whole appearance) and, with
    ``appeared``, an ``appeared`` event on its first frame; the fields are in
    :meth:`Appearance.to_event`. The run loop calls :meth:`record` once per
    frame and :meth:`write` with the appearances still open at the end.

    Parameters
    ----------
    path : str or Path or None
        The events file (overwritten, mode 0600); None writes no file (event sinks only).
    source : str
        The events' ``source`` (the source as the user named it).
    appeared : bool
        Also write an ``appeared`` event when a track (named or Unknown) first shows.
    snapshots : bool
        Save the best face crop of each appearance as a JPEG beside the events file and name it in
        the events (:mod:`pipeline.snapshots`); off without a file or when ``path`` is not a regular file.
    sinks : sequence
        Event sinks (:mod:`pipeline.event_sinks`): each event goes to ``send(event)`` after its line is
        written; :meth:`close` closes them.
    """

    what = "events"

    def __init__(self, path, *, source: str = "", appeared: bool = True, snapshots: bool = True,
                 sinks: Sequence = ()) -> None:
        from pipeline.snapshots import SnapshotKeeper

        self.appeared = check_bool("appeared", appeared)
        snapshots = check_bool("snapshots", snapshots)
        regular = path is not None and (not Path(path).exists() or Path(path).is_file())
        super().__init__(path)
        self.source = str(source)
        self.sinks = list(sinks)
        self._keeper = SnapshotKeeper(self.path.parent, self.path.stem) if snapshots and regular else None
        self._numbers: Dict[int, int] = {}          # track id -> number of its open appearance

    def record(self, result, image, step: LogStep) -> None:
        """One frame: ``appeared`` events, each shown face offered as its snapshot, ``ended`` events.

        ``image`` is the frame before anything is drawn on it (None: no snapshots from this frame).
        """
        for app in step.appeared:
            self._numbers[app.track_id] = app.number
        if self._keeper is not None and image is not None:
            for i, track_id in enumerate(result.track_ids):
                number = self._numbers.get(int(track_id))
                if number is not None:
                    self._keeper.offer((int(track_id), number), image, result.xyxy[i], result.confidence[i],
                                       bool(result.predicted[i]))
        if self.appeared:
            for app in step.appeared:
                self._emit(app.to_event("appeared", source=self.source, snapshot=self._save(app)))
        self.write(step.ended)

    def write(self, appearances: Iterable[Appearance]) -> None:
        """Write the ``ended`` event of each appearance (with its best snapshot)."""
        for app in appearances:
            self._numbers.pop(app.track_id, None)
            snapshot = self._save(app)
            if self._keeper is not None:
                self._keeper.forget((app.track_id, app.number))
            self._emit(app.to_event("ended", source=self.source, snapshot=snapshot))

    def _save(self, app: Appearance) -> Optional[str]:
        if self._keeper is None:
            return None
        try:
            return self._keeper.save((app.track_id, app.number))
        except OSError as exc:
            name = self.path.parent / self._keeper.file_name(app.track_id, app.number)
            raise OutputError(f"cannot write snapshot {name}: {describe_os_error(exc)}") from None

    def _emit(self, event: dict) -> None:
        self._write_line(json.dumps(event))
        for sink in self.sinks:
            sink.send(event)

    def close(self) -> None:
        """Close the file, then every event sink (each waits a bounded time to deliver what it holds)."""
        super().close()
        errors = close_all(self.sinks)
        self.sinks = []
        if errors:
            raise errors[0]


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
