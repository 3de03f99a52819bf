"""Ground truth and tracker output on disk: reading and writing.

Formats
-------
MOT rows (``gt/gt.txt``, MOTChallenge 2016/17 ground truth)
    ``frame,id,x,y,w,h,consider,class,visibility`` with ``frame`` 1-based,
    the box in ``tlwh`` pixels, ``consider`` 1 (0 marks a row to ignore),
    ``class`` 1 (face) and ``visibility`` in ``[0, 1]``.
MOT rows (tracker output, ``tracks.txt``)
    ``frame,id,x,y,w,h,score,-1,-1,-1``; an optional 11th column holds the
    name shown for that track on that frame (empty = unknown). That column
    is not MOTChallenge; MOT tools ignore it.
Names file (``names.csv``, optional)
    ``frame,track_id,name`` with a header: the name displayed for a track on
    a frame (empty = unknown). Takes precedence over an 11th tracks column.
Events (``events.jsonl``, from the pipeline)
    one JSON object a line ``{track_id, name, score, first_frame,
    last_frame, first_time, last_time, frames_seen}`` per appearance, with
    0-based frame indices (``pipeline.events``; the tracks file is 1-based).
    The name of a track on a frame is that of the appearance containing it
    (the latest-starting one when several do). That is the name at the *end*
    of the appearance, so scoring from events is retrospective; a names
    file (or an 11th tracks column) gives what was shown on each frame.
Identity map (``identities.json``)
    ``{"<gt id>": {"name": str, "enrolled": bool, ...}}``.
Cut list (``cuts.txt``)
    one 1-based frame number a line: the first frame of each new shot.
Sparse labels (``labels.csv``)
    ``frame,x,y,w,h,name`` with a header, boxes on labelled frames only.
    Every distinct name becomes one gt id; a name is enrolled when it is a
    folder of the gallery, or, without a gallery, when it does not start
    with ``_`` or ``unknown``. Scoring then runs on the labelled frames only.
"""
from __future__ import annotations

import configparser
import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Name of the ground-truth file inside a MOTChallenge sequence folder.
GT_FILE = Path("gt") / "gt.txt"
IDENTITIES_FILE = "identities.json"
CUTS_FILE = "cuts.txt"
SEQINFO_FILE = "seqinfo.ini"
SPARSE_FILE = "labels.csv"


@dataclass
class BoxTable:
    """Boxes of many frames, one row per (frame, id).

    Attributes
    ----------
    frame : ndarray
        ``(N,)`` int64 frame numbers, 1-based.
    ids : ndarray
        ``(N,)`` int64 object (gt) or track (tracker) ids.
    tlwh : ndarray
        ``(N, 4)`` float64 boxes ``(x, y, w, h)`` in pixels.
    score : ndarray
        ``(N,)`` float64: visibility for ground truth, confidence for tracks.
    names : list of (str or None), optional
        ``N`` names shown per row (tracker output only), ``None`` = unknown.
    """

    frame: np.ndarray
    ids: np.ndarray
    tlwh: np.ndarray
    score: np.ndarray
    names: Optional[List[Optional[str]]] = None

    def __post_init__(self) -> None:
        self.frame = np.asarray(self.frame, dtype=np.int64).reshape(-1)
        n = len(self.frame)
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        self.tlwh = np.asarray(self.tlwh, dtype=np.float64).reshape(-1, 4)
        self.score = np.asarray(self.score, dtype=np.float64).reshape(-1)
        if self.ids.shape != (n,) or self.tlwh.shape != (n, 4) or self.score.shape != (n,):
            raise ValueError("frame, ids, tlwh and score must have the same number of rows")
        if self.names is not None and len(self.names) != n:
            raise ValueError(f"names must have {n} entries, got {len(self.names)}")

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls) -> "BoxTable":
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, 4)), np.zeros(0))

    def select(self, mask: np.ndarray) -> "BoxTable":
        """Rows where the boolean ``(N,)`` ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        names = None if self.names is None else [n for n, m in zip(self.names, mask) if m]
        return BoxTable(self.frame[mask], self.ids[mask], self.tlwh[mask], self.score[mask], names)

    def frames(self) -> np.ndarray:
        """Sorted distinct frame numbers."""
        return np.unique(self.frame)

    def by_frame(self) -> Dict[int, np.ndarray]:
        """``{frame: row indices}``."""
        order = np.argsort(self.frame, kind="stable")
        out: Dict[int, np.ndarray] = {}
        if len(order) == 0:
            return out
        frames = self.frame[order]
        splits = np.flatnonzero(np.diff(frames)) + 1
        for chunk in np.split(order, splits):
            out[int(self.frame[chunk[0]])] = chunk
        return out


@dataclass
class Identity:
    """Who a ground-truth id is."""

    name: str
    enrolled: bool
    extra: dict = field(default_factory=dict)


@dataclass
class GroundTruth:
    """Everything the scorer needs about one sequence.

    Attributes
    ----------
    boxes : BoxTable
        Ground-truth boxes; ``score`` is the visibility.
    identities : dict
        ``{gt id: Identity}``.
    frame_rate : float
        Frames per second (for times to first correct name).
    num_frames : int
        Number of frames in the sequence.
    cuts : list of int
        First frame (1-based) of each new shot.
    labelled_frames : ndarray or None
        For sparse labels, the frames that were labelled (scoring is
        restricted to them); ``None`` for dense ground truth.
    """

    boxes: BoxTable
    identities: Dict[int, Identity]
    frame_rate: float = 30.0
    num_frames: int = 0
    cuts: List[int] = field(default_factory=list)
    labelled_frames: Optional[np.ndarray] = None


# --------------------------------------------------------------------- MOT rows
def write_mot_gt(path: Path, table: BoxTable) -> None:
    """Write MOTChallenge ground truth (``frame,id,x,y,w,h,1,1,visibility``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.lexsort((table.ids, table.frame))
    with open(path, "w") as f:
        for i in order:
            x, y, w, h = table.tlwh[i]
            f.write(f"{table.frame[i]},{table.ids[i]},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,{table.score[i]:.4f}\n")


def write_mot_tracks(path: Path, table: BoxTable, with_names: bool = False) -> None:
    """Write tracker output rows ``frame,id,x,y,w,h,score,-1,-1,-1[,name]``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i in np.lexsort((table.ids, table.frame)):
            x, y, w, h = table.tlwh[i]
            row = f"{table.frame[i]},{table.ids[i]},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{table.score[i]:.4f},-1,-1,-1"
            if with_names:
                name = table.names[i] if table.names is not None else None
                row += "," + (name or "")
            f.write(row + "\n")


def read_mot(path: Path, *, ground_truth: bool = False) -> BoxTable:
    """Read MOT rows (ground truth or tracker output).

    Parameters
    ----------
    path : Path
        A comma-separated file of MOT rows.
    ground_truth : bool
        If true, ``score`` is the visibility (column 9, 1.0 when absent) and
        rows with ``consider == 0`` are dropped; otherwise ``score`` is column
        7 and an 11th column, when present, is the name shown.
    """
    frames, ids, boxes, scores, names = [], [], [], [], []
    has_names = False
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not row[0].strip() or row[0].startswith("#"):
                continue
            if len(row) < 6:
                raise ValueError(f"{path}:{lineno}: expected at least 6 columns, got {len(row)}")
            if ground_truth:
                if len(row) >= 7 and float(row[6]) == 0:
                    continue
                score = float(row[8]) if len(row) >= 9 else 1.0
            else:
                score = float(row[6]) if len(row) >= 7 else 1.0
                if len(row) >= 11:
                    has_names = True
                    names.append(row[10].strip() or None)
                else:
                    names.append(None)
            frames.append(int(float(row[0])))
            ids.append(int(float(row[1])))
            boxes.append([float(v) for v in row[2:6]])
            scores.append(score)
    return BoxTable(np.array(frames), np.array(ids), np.array(boxes).reshape(-1, 4), np.array(scores),
                    names if has_names else None)


# ------------------------------------------------------------- names and events
def read_names(path: Path) -> Dict[tuple, Optional[str]]:
    """Read a names file into ``{(frame, track_id): name or None}``."""
    out: Dict[tuple, Optional[str]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out[(int(row["frame"]), int(row["track_id"]))] = (row.get("name") or "").strip() or None
    return out


def read_events(path: Path) -> List[dict]:
    """Read the pipeline's events (JSON lines)."""
    events = []
    with open(path) as f:
        for line in f:
            if line.strip():
                events.append(json.loads(line))
    return events


def names_from_events(tracks: BoxTable, events: Sequence[dict], *, zero_based: bool = True) -> List[Optional[str]]:
    """The name of each tracker row according to the events.

    Parameters
    ----------
    tracks : BoxTable
        Tracker rows.
    events : sequence of dict
        Event lines with ``track_id``, ``name``, ``first_frame`` and
        ``last_frame``.
    zero_based : bool
        Event frames are 0-based indices (the pipeline's); tracker rows are 1-based.

    Returns
    -------
    list
        ``len(tracks)`` names (``None`` = unknown or no event).
    """
    per_track: Dict[int, List[dict]] = {}
    for e in events:
        per_track.setdefault(int(e["track_id"]), []).append(e)
    for evs in per_track.values():
        evs.sort(key=lambda e: int(e["first_frame"]))
    offset = 1 if zero_based else 0
    names: List[Optional[str]] = []
    for frame, tid in zip(tracks.frame, tracks.ids):
        name = None
        for e in per_track.get(int(tid), []):
            if int(e["first_frame"]) + offset <= frame <= int(e["last_frame"]) + offset:
                name = e.get("name") or None
        names.append(name)
    return names


def attach_names(tracks: BoxTable, *, names_file: Optional[Path] = None,
                 events_file: Optional[Path] = None) -> BoxTable:
    """Tracker rows with ``names`` filled: names file > 11th column > events."""
    if names_file is not None:
        lookup = read_names(names_file)
        names = [lookup.get((int(f), int(t))) for f, t in zip(tracks.frame, tracks.ids)]
    elif tracks.names is not None:
        return tracks
    elif events_file is not None:
        names = names_from_events(tracks, read_events(events_file))
    else:
        names = [None] * len(tracks)
    return BoxTable(tracks.frame, tracks.ids, tracks.tlwh, tracks.score, names)


# ------------------------------------------------------- identity map, cuts, info
def write_identities(path: Path, identities: Dict[int, Identity]) -> None:
    """Write ``identities.json``: gt id (as a string key, sorted) -> ``name``, ``enrolled`` and the extra keys."""
    data = {str(k): {"name": v.name, "enrolled": bool(v.enrolled), **v.extra} for k, v in sorted(identities.items())}
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_identities(path: Path) -> Dict[int, Identity]:
    """Read what :func:`write_identities` wrote; keys other than ``name`` and ``enrolled`` go to ``extra``."""
    data = json.loads(Path(path).read_text())
    out = {}
    for k, v in data.items():
        extra = {kk: vv for kk, vv in v.items() if kk not in ("name", "enrolled")}
        out[int(k)] = Identity(str(v["name"]), bool(v["enrolled"]), extra)
    return out


def write_cuts(path: Path, cuts: Iterable[int]) -> None:
    """Write the 1-based first frames of the shots after the first, one a line (an empty file: no cuts)."""
    Path(path).write_text("".join(f"{int(c)}\n" for c in cuts))


def read_cuts(path: Path) -> List[int]:
    """Read what :func:`write_cuts` wrote (blank lines ignored)."""
    return [int(line) for line in Path(path).read_text().split() if line.strip()]


def write_seqinfo(path: Path, *, name: str, frame_rate: float, num_frames: int, width: int, height: int,
                  video: str = "video.mp4") -> None:
    """Write a MOTChallenge ``seqinfo.ini``."""
    cp = configparser.ConfigParser()
    cp.optionxform = str
    cp["Sequence"] = {"name": name, "imDir": "img1", "frameRate": f"{frame_rate:g}", "seqLength": str(num_frames),
                      "imWidth": str(width), "imHeight": str(height), "imExt": ".jpg", "video": video}
    with open(path, "w") as f:
        cp.write(f)


def read_seqinfo(path: Path) -> dict:
    """The ``[Sequence]`` section of a ``seqinfo.ini`` as strings (empty when the file or section is missing)."""
    cp = configparser.ConfigParser()
    cp.optionxform = str
    cp.read(path)
    return dict(cp["Sequence"]) if "Sequence" in cp else {}


# ------------------------------------------------------------------ sparse labels
def _default_enrolled(name: str) -> bool:
    """Without a gallery folder: a label is enrolled unless it starts with ``_`` or ``unknown`` (any case)."""
    low = name.lower()
    return not (low.startswith("_") or low.startswith("unknown"))


def read_sparse_labels(path: Path, *, gallery_dir: Optional[Path] = None, frame_rate: float = 30.0) -> GroundTruth:
    """Read hand labels ``frame,x,y,w,h,name`` into a :class:`GroundTruth`.

    Each distinct name gets one gt id (1, 2, ... in order of first
    appearance). ``labelled_frames`` is set, so scoring is restricted to the
    frames that carry labels. A frame labelled with no faces can be written
    as a row with an empty name and a zero-size box.
    """
    enrolled_names = None
    if gallery_dir is not None:
        enrolled_names = {p.name for p in Path(gallery_dir).iterdir() if p.is_dir() and not p.name.startswith("_")}
    frames, ids, boxes, labelled = [], [], [], set()
    name_to_id: Dict[str, int] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"frame", "x", "y", "w", "h", "name"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            frame = int(row["frame"])
            labelled.add(frame)
            name = (row["name"] or "").strip()
            w, h = float(row["w"]), float(row["h"])
            if not name or w <= 0 or h <= 0:
                continue  # a labelled frame without (this) face
            gid = name_to_id.setdefault(name, len(name_to_id) + 1)
            frames.append(frame)
            ids.append(gid)
            boxes.append([float(row["x"]), float(row["y"]), w, h])
    identities = {
        gid: Identity(name, (name in enrolled_names) if enrolled_names is not None else _default_enrolled(name))
        for name, gid in name_to_id.items()
    }
    table = BoxTable(np.array(frames), np.array(ids), np.array(boxes).reshape(-1, 4), np.ones(len(frames)))
    lf = np.array(sorted(labelled), dtype=np.int64)
    return GroundTruth(table, identities, frame_rate=frame_rate,
                       num_frames=int(lf.max()) if len(lf) else 0, labelled_frames=lf)


def load_ground_truth(path: Path, *, gallery_dir: Optional[Path] = None) -> GroundTruth:
    """Load dense (a synth/MOT sequence folder) or sparse (``labels.csv``) ground truth.

    ``path`` may be a sequence folder holding ``gt/gt.txt`` (with optional
    ``identities.json``, ``cuts.txt``, ``seqinfo.ini``), a folder holding
    ``labels.csv``, or a ``.csv`` file of sparse labels.
    """
    path = Path(path)
    info = read_seqinfo(path / SEQINFO_FILE) if (path.is_dir() and (path / SEQINFO_FILE).exists()) else {}
    frame_rate = float(info.get("frameRate", 30.0))
    if path.is_file() and path.suffix == ".csv":
        return read_sparse_labels(path, gallery_dir=gallery_dir, frame_rate=frame_rate)
    if path.is_dir() and (path / SPARSE_FILE).exists() and not (path / GT_FILE).exists():
        return read_sparse_labels(path / SPARSE_FILE, gallery_dir=gallery_dir, frame_rate=frame_rate)
    gt_path = path / GT_FILE if path.is_dir() else path
    if not gt_path.exists():
        raise FileNotFoundError(f"no ground truth at {path} (expected {GT_FILE} or {SPARSE_FILE})")
    boxes = read_mot(gt_path, ground_truth=True)
    seq_dir = gt_path.parent.parent
    ident_path = seq_dir / IDENTITIES_FILE
    if ident_path.exists():
        identities = read_identities(ident_path)
    else:
        log.warning("%s absent: every gt id counts as a non-enrolled person", ident_path)
        identities = {int(i): Identity(f"id{i}", False) for i in np.unique(boxes.ids)}
    cuts = read_cuts(seq_dir / CUTS_FILE) if (seq_dir / CUTS_FILE).exists() else []
    num_frames = int(info.get("seqLength", boxes.frame.max() if len(boxes) else 0))
    return GroundTruth(boxes, identities, frame_rate=frame_rate, num_frames=num_frames, cuts=cuts)
