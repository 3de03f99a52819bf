"""Appearances: lost tracks end them, revived ones start new ones, open ones end at exit."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.events import AppearanceLog, EventWriter, FrameWriters, NamesWriter, TracksWriter


def frame(i, ids, names=None, lost=(), ended=()):
    n = len(ids)
    return SimpleNamespace(frame_index=i, timestamp=i / 10.0, track_ids=np.asarray(ids, np.int64),
                           names=list(names or [None] * n), scores=np.full(n, 0.6, np.float32),
                           xyxy=np.tile(np.array([[10, 20, 40, 60]], np.float32), (n, 1)),
                           confidence=np.full(n, 0.9, np.float32), lost_ids=list(lost), ended_ids=list(ended),
                           identity_ids=None, scene=-1)


def test_lost_track_ends_its_appearance_and_a_revival_starts_a_new_one_with_the_same_id():
    log = AppearanceLog()
    ended = []
    for i in range(5):
        ended += log.update(frame(i, [1], ["ada"]))
    ended += log.update(frame(5, [], lost=[1]))
    assert len(ended) == 1
    first = ended[0]
    assert (first.track_id, first.name, first.first_frame, first.last_frame, first.frames_seen) == (1, "ada", 0, 4, 5)
    assert first.first_time == 0.0 and first.last_time == pytest.approx(0.4)
    for i in range(8, 10):
        ended += log.update(frame(i, [1], ["ada"]))
    rest = log.finish()
    assert len(rest) == 1 and (rest[0].track_id, rest[0].first_frame, rest[0].last_frame) == (1, 8, 9)
    assert log.appearances == 2 and log.names_seen == {"ada"}


def test_ended_ids_close_appearances_and_the_latest_name_is_reported():
    log = AppearanceLog()
    log.update(frame(0, [4], [None]))
    log.update(frame(1, [4], ["bob"]))
    out = log.update(frame(2, [], ended=[4]))
    assert [(a.track_id, a.name) for a in out] == [(4, "bob")]
    assert log.finish() == []


def test_writers_flush_every_line(tmp_path):
    ev = EventWriter(tmp_path / "e.jsonl")
    log = AppearanceLog()
    log.update(frame(0, [1, 2], ["ada", None]))
    ev.write(log.finish())
    # Readable before close: flushed per line.
    lines = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [x["name"] for x in lines] == ["ada", None]
    tr = TracksWriter(tmp_path / "t.txt")
    tr.write(frame(0, [1, 2]))
    assert (tmp_path / "t.txt").read_text().splitlines() == [
        "1,1,10.00,20.00,30.00,40.00,0.9000,-1,-1,-1", "1,2,10.00,20.00,30.00,40.00,0.9000,-1,-1,-1"]
    ev.close()
    tr.close()


def test_writers_refuse_a_missing_folder(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        EventWriter(tmp_path / "nope" / "e.jsonl")
    with pytest.raises(OSError, match="folder"):
        TracksWriter(tmp_path)
    with pytest.raises(OSError, match="cannot write names"):
        NamesWriter(tmp_path / "nope" / "names.csv")


def test_names_writer_rows_match_the_tracks_rows_and_read_back_in_the_scorer(tmp_path):
    from evaluation.gt import read_names

    writers = FrameWriters(TracksWriter(tmp_path / "t.txt"), NamesWriter(tmp_path / "n.csv"))
    writers.write(frame(0, [1, 2], ["ada", None]))
    writers.write(frame(1, [2, 7], ['Smith, "Jo"', "ada"]))
    # Flushed per line, readable before close; names with commas and quotes survive.
    assert read_names(tmp_path / "n.csv") == {(1, 1): "ada", (1, 2): None, (2, 2): 'Smith, "Jo"', (2, 7): "ada"}
    tracks = [tuple(int(v) for v in line.split(",")[:2]) for line in (tmp_path / "t.txt").read_text().splitlines()]
    assert tracks == [(1, 1), (1, 2), (2, 2), (2, 7)]
    assert (tmp_path / "n.csv").read_text().splitlines()[:2] == ["frame,track_id,name", "1,1,ada"]
    writers.close()
    assert all(w._file.closed for w in writers.writers)


def test_frame_writers_close_every_writer_and_raise_the_first_error():
    closed = []

    class Writer:
        def __init__(self, name, fail=False):
            self.name, self.fail = name, fail

        def close(self):
            closed.append(self.name)
            if self.fail:
                raise OSError(f"{self.name} failed")

    group = FrameWriters(Writer("a", fail=True), None, Writer("b", fail=True), Writer("c"))
    with pytest.raises(OSError, match="a failed"):
        group.close()
    assert closed == ["a", "b", "c"]
