"""Appearances: one uninterrupted stretch of a confirmed track on screen, followed frame by frame.

An appearance ends when the tracker moves the track to its lost buffer
(``lost_ids``), when the track is deleted (``ended_ids``), or when the run
ends. A lost track that comes back starts a new appearance with the same id.
:class:`AppearanceLog` turns per-frame results into the appearances that
started and ended on each frame (:class:`LogStep`);
:class:`pipeline.events.EventWriter` writes them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Tuple

#: Decimals of scores and of times in seconds in the events.
EVENT_DECIMALS = 3


def wall_time(seconds: float) -> str:
    """``seconds`` since the epoch as ISO 8601 in the local time zone, with its offset, to the millisecond."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).astimezone().isoformat(timespec="milliseconds")


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), EVENT_DECIMALS)


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
    number : int
        1-based count of appearances in the run (names its snapshot).
    xyxy : tuple of 4 int
        The box on its last frame, in pixels.
    first_seen, last_seen : float
        Wall-clock times (seconds since the epoch) of its first and last frame.
    scene, identity : int or None
        With scene linking: the scene of its last frame, and the identity cluster of the track (one id for a
        person's tracks within a scene); None without.
    """

    track_id: int
    name: Optional[str]
    score: Optional[float]
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    frames_seen: int
    number: int = 0
    xyxy: Tuple[int, int, int, int] = (0, 0, 0, 0)
    first_seen: float = 0.0
    last_seen: float = 0.0
    scene: Optional[int] = None
    identity: Optional[int] = None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_event(self, kind: str, *, source: str = "", snapshot: Optional[str] = None) -> dict:
        """The event line of this appearance: ``kind`` is ``appeared`` or ``ended`` (see README "Outputs").

        ``time`` is the wall clock of its first frame for ``appeared``, of its last for ``ended``;
        scores and seconds are rounded to :data:`EVENT_DECIMALS` decimals.
        """
        return {"event": kind, "time": wall_time(self.first_seen if kind == "appeared" else self.last_seen),
                "source": source, "track_id": self.track_id, "name": self.name, "score": _rounded(self.score),
                "box": [int(v) for v in self.xyxy], "first_frame": self.first_frame, "last_frame": self.last_frame,
                "first_time": _rounded(self.first_time), "last_time": _rounded(self.last_time),
                "frames_seen": self.frames_seen, "first_seen": wall_time(self.first_seen),
                "last_seen": wall_time(self.last_seen), "scene": self.scene, "identity": self.identity,
                "snapshot": snapshot}


@dataclass
class LogStep:
    """What one frame did to the appearances: those that started on it and those that ended."""

    appeared: List[Appearance]
    ended: List[Appearance]


class AppearanceLog:
    """Follow appearances across frames.

    Call :meth:`step` (or :meth:`update`) once per frame with the frame's
    result; :meth:`finish` ends the open ones.

    Parameters
    ----------
    clock : callable
        Wall-clock seconds since the epoch (``time.time``; a test passes a fake).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._open: Dict[int, Appearance] = {}
        self._clock = clock
        #: Names of everyone named at least once, and the number of appearances.
        self.names_seen: set = set()
        self.appearances = 0

    def update(self, result) -> List[Appearance]:
        """Record one frame; the appearances that ended on it (see :meth:`step`)."""
        return self.step(result).ended

    def step(self, result) -> LogStep:
        """Record one frame.

        Parameters
        ----------
        result : FrameResult
            Needs ``frame_index``, ``timestamp``, ``track_ids``, ``xyxy``, ``names``,
            ``scores``, ``lost_ids``, ``ended_ids``, ``identity_ids`` and ``scene``.
        """
        now = float(self._clock())
        ended: List[Appearance] = []
        appeared: List[Appearance] = []
        gone = set(int(i) for i in result.lost_ids) | set(int(i) for i in result.ended_ids)
        shown = {int(t) for t in result.track_ids}
        for track_id in sorted(gone - shown):
            app = self._open.pop(track_id, None)
            if app is not None:
                ended.append(app)
        identities = result.identity_ids
        for i, (track_id, box, name, score) in enumerate(zip(result.track_ids, result.xyxy, result.names,
                                                              result.scores)):
            track_id = int(track_id)
            app = self._open.get(track_id)
            if app is None:
                self.appearances += 1
                app = Appearance(track_id, name, None, result.frame_index, result.frame_index,
                                 float(result.timestamp), float(result.timestamp), 0, self.appearances,
                                 first_seen=now)
                self._open[track_id] = app
                appeared.append(app)
            app.name = name
            app.score = None if score is None or score != score else float(score)
            app.last_frame, app.last_time, app.last_seen = result.frame_index, float(result.timestamp), now
            app.xyxy = tuple(int(round(float(v))) for v in box)
            app.frames_seen += 1
            if identities is not None:
                app.scene, app.identity = int(result.scene), int(identities[i])
            if name:
                self.names_seen.add(name)
        return LogStep(appeared, ended)

    def finish(self) -> List[Appearance]:
        """End every open appearance (at the end of the run)."""
        ended = [self._open[k] for k in sorted(self._open)]
        self._open.clear()
        return ended
