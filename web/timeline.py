"""The Events API: the appearances of an ``events.jsonl`` as a timeline, with their snapshots.

The file is what ``demo.py --events`` (:class:`pipeline.events.EventWriter`)
writes: ``appeared`` and ``ended`` events, one per line; it is read again on
every request, so a running pipeline's new lines show up. A line that is not
a complete event (the last line of a file being written) is skipped and
counted. A snapshot is the JPEG an event names beside the file, else
``<snapshots>/<track_id>-<first_frame>.jpg`` (:class:`web.snapshots.Snapshots`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel

class Event(BaseModel):
    """One appearance on the timeline (the last event written of it: ``ended``, or ``appeared`` while open)."""

    track_id: int
    name: Optional[str] = None
    score: Optional[float] = None
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    frames_seen: int = 0
    time: Optional[str] = None
    scene: Optional[int] = None
    identity: Optional[int] = None
    snapshot: Optional[str] = None


class Timeline(BaseModel):
    events: List[Event]
    people: List[str]
    skipped_lines: int


def snapshot_name(track_id: int, first_frame: int) -> str:
    """The file name of an appearance's snapshot written by :class:`web.snapshots.Snapshots`."""
    return f"{int(track_id)}-{int(first_frame)}.jpg"


def read_events(path: Path, snapshots: Optional[Path]) -> tuple:
    """``(events, skipped_lines)`` of an events file, one per appearance, in the order of ``first_time``.

    An appearance's ``ended`` event replaces its ``appeared`` one. Its snapshot is the JPEG the event names
    (beside the events file, :class:`pipeline.events.EventWriter`), else the one :class:`web.snapshots.Snapshots`
    wrote under ``snapshots``.
    """
    found: dict = {}
    skipped = 0
    if not path.is_file():
        return [], skipped
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
                event = Event(**{k: row[k] for k in Event.model_fields if k in row and k != "snapshot"})
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            key = (event.track_id, event.first_frame)
            if row.get("event") == "appeared" and key in found:
                continue
            written = path.parent / str(row.get("snapshot") or "")
            if row.get("snapshot") and written.is_file():
                event.snapshot = f"/api/events/snapshots/{event.track_id}/{event.first_frame}"
            elif snapshots is not None and (snapshots / snapshot_name(event.track_id, event.first_frame)).is_file():
                event.snapshot = f"/api/events/snapshots/{event.track_id}/{event.first_frame}"
            found[key] = event
    events = sorted(found.values(), key=lambda e: (e.first_time, e.track_id))
    return events, skipped


def snapshot_path(events_path: Path, snapshots: Optional[Path], track_id: int, first_frame: int) -> Optional[Path]:
    """The snapshot file of one appearance, or None."""
    for event_line in _lines_of(events_path, track_id, first_frame):
        name = event_line.get("snapshot")
        if name and (events_path.parent / name).is_file():
            return events_path.parent / name
    path = None if snapshots is None else snapshots / snapshot_name(track_id, first_frame)
    return path if path is not None and path.is_file() else None


def _lines_of(path: Path, track_id: int, first_frame: int) -> list:
    """The event rows of one appearance, last first."""
    rows = []
    if path is None or not path.is_file():
        return rows
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("track_id") == track_id and row.get("first_frame") == first_frame:
                rows.append(row)
    return rows[::-1]


def router(events_path: Optional[Path], snapshots: Optional[Path]) -> APIRouter:
    """The ``/api/events`` routes over one events file (none: an empty timeline)."""
    api = APIRouter(prefix="/api/events", tags=["events"])

    @api.get("", response_model=Timeline, summary="The appearances, oldest first, optionally of one person")
    def timeline(person: Optional[str] = Query(None, description="a name; 'Unknown' for the unnamed")):
        events, skipped = read_events(events_path, snapshots) if events_path else ([], 0)
        people = sorted({e.name for e in events if e.name})
        if person is not None:
            events = [e for e in events if (e.name or "Unknown") == person]
        return Timeline(events=events, people=people, skipped_lines=skipped)

    @api.get("/snapshots/{track_id}/{first_frame}", response_class=FileResponse,
             summary="The snapshot (JPEG) of one appearance")
    def snapshot(track_id: int, first_frame: int):
        path = snapshot_path(events_path, snapshots, track_id, first_frame) if events_path else None
        if path is None:
            raise HTTPException(404, f"no snapshot of track {track_id} from frame {first_frame}")
        return FileResponse(path, media_type="image/jpeg")

    return api
