"""The Events API: the appearances of an ``events.jsonl`` as a timeline, with their snapshots.

The file is what ``demo.py --events`` (:class:`pipeline.events.EventWriter`)
writes, one appearance per line; it is read again on every request, so a
running pipeline's new lines show up. A line that is not a complete
appearance (the last line of a file being written) is skipped and counted.
A snapshot is ``<snapshots>/<track_id>-<first_frame>.jpg``
(:class:`web.snapshots.Snapshots` writes them).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import List, Optional

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, create_model

from pipeline.events import Appearance


def _event_model():
    """The API's appearance: the fields of :class:`pipeline.events.Appearance`, and its snapshot's URL."""
    hints = typing.get_type_hints(Appearance)
    fields = {f.name: (hints[f.name], ...) for f in dataclasses.fields(Appearance)}
    return create_model("Event", **fields, snapshot=(Optional[str], None))


Event = _event_model()
_FIELDS = tuple(f.name for f in dataclasses.fields(Appearance))


class Timeline(BaseModel):
    events: List[Event]
    people: List[str]
    skipped_lines: int


def snapshot_name(track_id: int, first_frame: int) -> str:
    """The file name of an appearance's snapshot."""
    return f"{int(track_id)}-{int(first_frame)}.jpg"


def read_events(path: Path, snapshots: Optional[Path]) -> tuple:
    """``(events, skipped_lines)`` of an events file, in the order of ``first_time``."""
    events, skipped = [], 0
    if not path.is_file():
        return events, skipped
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
                event = Event(**{k: row[k] for k in _FIELDS})
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            name = snapshot_name(event.track_id, event.first_frame)
            if snapshots is not None and (snapshots / name).is_file():
                event.snapshot = f"/api/events/snapshots/{event.track_id}/{event.first_frame}"
            events.append(event)
    events.sort(key=lambda e: (e.first_time, e.track_id))
    return events, skipped


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
        path = None if snapshots is None else snapshots / snapshot_name(track_id, first_frame)
        if path is None or not path.is_file():
            raise HTTPException(404, f"no snapshot of track {track_id} from frame {first_frame}")
        return FileResponse(path, media_type="image/jpeg")

    return api
