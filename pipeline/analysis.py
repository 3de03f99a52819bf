"""Two-pass mode: the analysis file of a whole video, and rendering from it without the models.

Pass 1 runs the pipeline with scene linking over the whole file and an
:class:`AnalysisRecorder` as one of its per-frame writers. At the end it
writes one JSON file: every frame's boxes with their track ids, every track
with the identity it ended in and the name its own face gave it, and every
identity with one name. Pass 2 (:class:`AnalysisReplay`) gives the run loop
the same frames again from that file, each box named by its track's
identity, so a name found anywhere in an identity shows on all its frames,
backwards in time too. A track's boxes from before it was shown (tentative, or held while it
might be an absent track) are drawn too, once it is shown: the file knows
the start was real. A user may correct an identity's ``name`` (or move a
track to another ``identity``) in the file and render again in seconds:
decoding, drawing and encoding only.

With the identifier's ``corroboration_seconds`` (:func:`take_corroboration`),
pass 1 names from the faces alone and the analysis checks each identity's
name afterwards, in both directions of time: a name that no track of the
identity gave with a score of at least the large-face threshold stands only
when that person was named so within the window before or after the
identity's tracks; otherwise the identity is written with ``"name": null``
and the refused name under ``"uncorroborated"`` (a user may restore it).

File format (``"format": "facetrack-analysis"``, ``"version": 1``)::

    {"source": ..., "width": W, "height": H, "fps": F,
     "identities": [{"id": 7, "name": "ann" | null, "tracks": [3, 5], ("uncorroborated": "bob")}],
     "tracks": [{"id": 3, "identity": 7, "face_name": "ann" | null, "first_frame": 10, "last_frame": 50}],
     "frames": [{"index": 0, "time": 0.0, "scene": 0, "cut": false, "detected": true,
                 "boxes": [[track_id, x1, y1, x2, y2, confidence, score, predicted], ...]}]}
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from models.io import write_private
from pipeline.events import OutputError
from pipeline.results import PROCESS_STAGES, FrameResult

FORMAT = "facetrack-analysis"
VERSION = 1
#: Permission bits of the analysis file: names and where people were are personal data.
FILE_MODE = 0o600


class AnalysisError(ValueError):
    """An analysis file that cannot be read, or does not fit the video it is rendered onto."""


@dataclass
class _Track:
    first_frame: int
    last_frame: int
    identity: int
    face_name: Optional[str] = None
    first_time: float = 0.0
    last_time: float = 0.0
    confident: set = field(default_factory=set)     # names its face gave at the large-face threshold or above


def take_corroboration(identifier) -> dict:
    """Move the identifier's ``corroboration_seconds`` to the analysis: the :class:`AnalysisRecorder` keywords.

    Pass 1 then names small faces from the faces alone (the identifier's
    check is turned off), and the recorder keeps a name only where a
    confident sighting of the person lies within the window before *or
    after* it. Returns ``{}`` when the identifier has no such check.
    """
    seconds = float(getattr(identifier, "corroboration_seconds", 0.0) or 0.0)
    if seconds <= 0:
        return {}
    identifier.corroboration_seconds = 0.0
    return {"corroboration_seconds": seconds, "confident_score": float(identifier.similarity_threshold)}


@dataclass
class AnalysisRecorder:
    """A per-frame writer (``write(result)``, ``close()``) that keeps what pass 2 needs and writes it on close.

    Parameters
    ----------
    path : path
        The JSON file, written atomically (temporary file, then rename) with mode ``0o600``.
    source, width, height, fps
        What the video was, for the file's header and for checking it at render time.
    corroboration_seconds : float
        ``> 0``: an identity's name needs a confident sighting of the person
        (a box its face named with a score of at least ``confident_score``)
        on one of its tracks, or within this many seconds before or after
        them (:func:`take_corroboration`); ``0`` keeps every name.
    confident_score : float or None
        The large-face threshold (the identifier's ``similarity_threshold``),
        needed with ``corroboration_seconds``.
    """

    path: Path
    source: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    corroboration_seconds: float = 0.0
    confident_score: Optional[float] = None
    _frames: List[dict] = field(default_factory=list)
    _tracks: Dict[int, _Track] = field(default_factory=dict)
    _confident_times: Dict[str, List[float]] = field(default_factory=dict)
    _early: Dict[int, List[tuple]] = field(default_factory=dict)    # track id -> (frame position, box row)

    def __post_init__(self) -> None:
        if self.corroboration_seconds < 0:
            raise ValueError(f"corroboration_seconds must be >= 0, got {self.corroboration_seconds}")
        if self.corroboration_seconds > 0 and self.confident_score is None:
            raise ValueError("corroboration_seconds needs confident_score (the large-face threshold)")

    def write(self, result: FrameResult) -> None:
        """Record one frame's shown tracks (their own face names only where the face, not a link, named them)
        and its not-yet-shown ones (drawn by :meth:`document` if the track is shown later)."""
        boxes = []
        now = float(result.timestamp)
        for i, tid in enumerate(int(t) for t in result.track_ids):
            x1, y1, x2, y2 = (round(float(v), 1) for v in result.xyxy[i])
            boxes.append([tid, x1, y1, x2, y2, _rounded(result.confidence[i]), _rounded(result.scores[i]),
                          bool(result.predicted[i])])
            identity = int(result.identity_ids[i]) if result.identity_ids is not None else tid
            linked = bool(result.linked[i]) if result.linked is not None else False
            track = self._tracks.get(tid)
            if track is None:
                track = self._tracks[tid] = _Track(result.frame_index, result.frame_index, identity,
                                                   first_time=now)
            track.last_frame, track.last_time, track.identity = result.frame_index, now, identity
            if not result.predicted[i]:
                track.face_name = None if linked else result.names[i]
                if (track.face_name is not None and self.confident_score is not None
                        and float(result.scores[i]) >= self.confident_score):
                    track.confident.add(track.face_name)
                    self._confident_times.setdefault(track.face_name, []).append(now)
        for tid, box, conf in zip(result.tentative_ids, result.tentative_xyxy, result.tentative_confidence):
            row = [int(tid), *(round(float(v), 1) for v in box), _rounded(conf), None, False]
            self._early.setdefault(int(tid), []).append((len(self._frames), row))
        self._frames.append({"index": int(result.frame_index), "time": round(float(result.timestamp), 4),
                             "scene": int(result.scene), "cut": bool(result.scene_cut),
                             "detected": bool(result.detected), "boxes": boxes})

    def document(self) -> dict:
        """The analysis as the JSON-ready dict that :meth:`close` writes."""
        identities: Dict[int, List[int]] = {}
        for tid, track in self._tracks.items():
            identities.setdefault(track.identity, []).append(tid)
        rows, refused = [], set()
        for iid, members in sorted(identities.items()):
            names = {self._tracks[t].face_name for t in members} - {None}
            row = {"id": iid, "name": names.pop() if len(names) == 1 else None, "tracks": sorted(members)}
            if row["name"] is not None and not self._corroborated(row["name"], members):
                row["uncorroborated"], row["name"] = row["name"], None
                refused.update(members)
            rows.append(row)
        frames, first = self._with_early_boxes()
        tracks = [{"id": tid, "identity": t.identity, "face_name": None if tid in refused else t.face_name,
                   "first_frame": first.get(tid, t.first_frame), "last_frame": t.last_frame}
                  for tid, t in sorted(self._tracks.items())]
        return {"format": FORMAT, "version": VERSION, "source": self.source, "width": self.width,
                "height": self.height, "fps": self.fps, "identities": rows, "tracks": tracks,
                "frames": frames}

    def _with_early_boxes(self):
        """The frames with the boxes each shown track had before it was shown (tentative or held), and
        those tracks' first frames; boxes of tracks never shown (false starts) are left out."""
        frames, first = list(self._frames), {}
        for tid, rows in self._early.items():
            if tid not in self._tracks:
                continue
            for position, row in rows:
                frames[position] = {**frames[position], "boxes": frames[position]["boxes"] + [row]}
            first[tid] = min(self._tracks[tid].first_frame, self._frames[rows[0][0]]["index"])
        return frames, first

    def _corroborated(self, name: str, members: List[int]) -> bool:
        """A confident sighting of ``name`` on the identity's tracks or within the window around them."""
        if self.corroboration_seconds <= 0:
            return True
        tracks = [self._tracks[t] for t in members]
        if any(name in t.confident for t in tracks):
            return True
        start = min(t.first_time for t in tracks) - self.corroboration_seconds
        end = max(t.last_time for t in tracks) + self.corroboration_seconds
        return any(start <= t <= end for t in self._confident_times.get(name, ()))

    def close(self) -> None:
        """Write the file; a failure is an :class:`~pipeline.events.OutputError` naming it."""
        try:
            write_private_json(Path(self.path), self.document())
        except OSError as exc:
            raise OutputError(f"cannot write the analysis file {self.path}: {exc.strerror or exc}") from None


def write_private_json(path: Path, document: dict) -> None:
    """Write ``document`` to ``path`` atomically, readable by its owner only (its folder is made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(document, separators=(",", ":")).encode("utf-8"), FILE_MODE)


def _rounded(value) -> Optional[float]:
    v = float(value)
    return None if not np.isfinite(v) else round(v, 3)


class AnalysisReplay:
    """The pipeline's ``process`` answered from an analysis file: pass 2 of two-pass mode.

    Each box is named by its track's identity (``identities[].name``, as the
    user may have corrected it); a track whose identity has no name shows
    its own ``face_name``. Frames the file does not hold show no boxes.
    """

    def __init__(self, document: dict) -> None:
        check_document(document)
        self.document = document
        name_of = {int(i["id"]): i.get("name") for i in document["identities"]}
        self.names: Dict[int, Optional[str]] = {}
        self.identity: Dict[int, int] = {}
        for t in document["tracks"]:
            tid, iid = int(t["id"]), int(t["identity"])
            self.identity[tid] = iid
            name = name_of.get(iid)
            self.names[tid] = name if name is not None else t.get("face_name")
        self.frames = {int(f["index"]): f for f in document["frames"]}

    @classmethod
    def load(cls, path) -> "AnalysisReplay":
        """Read and check an analysis file."""
        try:
            with open(path, encoding="utf-8") as fh:
                document = json.load(fh)
        except OSError as exc:
            raise AnalysisError(f"cannot read the analysis file {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise AnalysisError(f"{path} is not valid JSON: {exc}") from None
        try:
            return cls(document)
        except AnalysisError as exc:
            raise AnalysisError(f"{path}: {exc}") from None

    def process(self, frame: np.ndarray, frame_index: int, timestamp: float = 0.0, *,
                scene_cut: Optional[bool] = None) -> FrameResult:
        """The recorded result of ``frame_index`` with the names of the file."""
        row = self.frames.get(int(frame_index), {"boxes": [], "scene": -1, "cut": False, "detected": False})
        boxes = row["boxes"]
        ids = np.asarray([int(b[0]) for b in boxes], np.int64)
        result = FrameResult(
            frame_index=int(frame_index), timestamp=float(timestamp), track_ids=ids,
            xyxy=np.asarray([b[1:5] for b in boxes], np.float32).reshape(-1, 4),
            confidence=np.asarray([_number(b[5]) for b in boxes], np.float32),
            names=[self.names.get(int(t)) for t in ids],
            scores=np.asarray([_number(b[6]) for b in boxes], np.float32),
            predicted=np.asarray([bool(b[7]) for b in boxes], bool),
            detected=bool(row["detected"]), scene_cut=bool(row["cut"]),
            timings={stage: 0.0 for stage in PROCESS_STAGES},
            identity_ids=np.asarray([self.identity.get(int(t), -1) for t in ids], np.int64),
            scene=int(row["scene"]))
        result.linked = np.zeros(len(ids), bool)
        return result

    def reset(self) -> None:
        """Nothing to forget (the loop's interface)."""


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def check_document(document) -> None:
    """Raise :class:`AnalysisError` naming what is wrong with an analysis document."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise AnalysisError(f"not a facetrack analysis file (no \"format\": \"{FORMAT}\")")
    if document.get("version") != VERSION:
        raise AnalysisError(f"analysis version {document.get('version')!r} is not supported (expected {VERSION})")
    for key in ("identities", "tracks", "frames"):
        if not isinstance(document.get(key), list):
            raise AnalysisError(f"\"{key}\" must be a list")
    identities = set()
    for i in document["identities"]:
        if not isinstance(i, dict) or not isinstance(i.get("id"), int):
            raise AnalysisError(f"every identity needs an integer \"id\", got {i!r}")
        if i.get("name") is not None and not isinstance(i["name"], str):
            raise AnalysisError(f"identity {i['id']}: \"name\" must be a string or null, got {i['name']!r}")
        identities.add(i["id"])
    for t in document["tracks"]:
        if not isinstance(t, dict) or not isinstance(t.get("id"), int) or not isinstance(t.get("identity"), int):
            raise AnalysisError(f"every track needs integer \"id\" and \"identity\", got {t!r}")
        if t["identity"] not in identities:
            raise AnalysisError(f"track {t['id']} names identity {t['identity']}, which is not listed")
    for f in document["frames"]:
        if not isinstance(f, dict) or not isinstance(f.get("index"), int) or not isinstance(f.get("boxes"), list):
            raise AnalysisError(f"every frame needs an integer \"index\" and a list of \"boxes\", got {f!r}"[:200])
        for b in f["boxes"]:
            if not isinstance(b, list) or len(b) != 8:
                raise AnalysisError(f"frame {f['index']}: a box is [track_id, x1, y1, x2, y2, confidence, score, "
                                    f"predicted], got {b!r}")
