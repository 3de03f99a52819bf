"""Events people can use: rounded numbers, box, wall-clock time, source, ``appeared`` events, snapshots."""
from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from pipeline.events import AppearanceLog, EventWriter

H, W = 240, 320


def frame(i, boxes, names, conf=0.9, predicted=False, lost=(), ended=(), identities=None, scene=-1):
    """A frame result with tracks 1..N at ``boxes`` (xyxy floats); ``identities``: scene linking's ids."""
    n = len(boxes)
    return SimpleNamespace(frame_index=i, timestamp=i / 3.0, track_ids=np.arange(1, n + 1, dtype=np.int64),
                           xyxy=np.array(boxes, np.float32).reshape(n, 4), names=list(names),
                           scores=np.full(n, 0.1001001001001001, np.float32), confidence=np.full(n, conf, np.float32),
                           predicted=np.full(n, predicted, bool), lost_ids=list(lost), ended_ids=list(ended),
                           identity_ids=None if identities is None else np.asarray(identities, np.int64),
                           scene=scene)


def image(value):
    """A grey frame whose pixels all hold ``value`` (so a snapshot tells which frame it came from)."""
    return np.full((H, W, 3), value, np.uint8)


class Clock:
    def __init__(self, start=1_790_000_000.0):
        self.now = start

    def __call__(self):
        self.now += 0.5
        return self.now


def feed(writer, log, frames_and_images):
    for result, img in frames_and_images:
        writer.record(result, img, log.step(result))


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_appearance_is_one_appeared_event_then_one_ended_event_with_everything(tmp_path):
    path = tmp_path / "events.jsonl"
    writer, log = EventWriter(path, source="cam.mp4"), AppearanceLog(clock=Clock())
    feed(writer, log, [(frame(i, [[10.4, 20.6, 50.2, 80.9]], [None if i < 2 else "ada"]), image(i)) for i in range(4)])
    feed(writer, log, [(frame(4, [], [], lost=[1]), image(4))])
    writer.close()
    appeared, ended = read(path)
    assert appeared["event"] == "appeared" and ended["event"] == "ended"
    assert appeared["name"] is None and ended["name"] == "ada"          # the name at the start, at the end
    for event in (appeared, ended):
        assert event["source"] == "cam.mp4" and event["track_id"] == 1
        assert event["box"] == [10, 21, 50, 81]                            # xyxy ints
        assert event["score"] == 0.1                                       # 3 decimals
        assert event["snapshot"] == "events-track1-1.jpg"
        stamp = datetime.fromisoformat(event["time"])
        assert stamp.tzinfo is not None                                    # ISO 8601 with its offset
    assert ended["last_time"] == 1.0 and ended["first_time"] == 0.0 and ended["frames_seen"] == 4
    assert datetime.fromisoformat(ended["time"]) - datetime.fromisoformat(appeared["time"]) == \
        datetime.fromisoformat(ended["last_seen"]) - datetime.fromisoformat(ended["first_seen"])
    assert (ended["first_frame"], ended["last_frame"]) == (0, 3)
    assert len(path.read_text().splitlines()) == 2                         # once per appearance


def test_with_scene_linking_events_carry_the_scene_and_the_identity_cluster(tmp_path):
    path = tmp_path / "events.jsonl"
    writer, log = EventWriter(path), AppearanceLog(clock=Clock())
    boxes = [[10, 20, 50, 80], [100, 20, 140, 80]]
    feed(writer, log, [(frame(i, boxes, ["ada", "ada"], identities=[7, 7], scene=3), image(i)) for i in range(3)])
    feed(writer, log, [(frame(3, [], [], lost=[1, 2]), image(3))])
    writer.close()
    events = read(path)
    assert {(e["track_id"], e["scene"], e["identity"]) for e in events} == {(1, 3, 7), (2, 3, 7)}
    # Without linking the fields are there, and null.
    plain = tmp_path / "plain.jsonl"
    writer, log = EventWriter(plain), AppearanceLog(clock=Clock())
    feed(writer, log, [(frame(0, boxes[:1], [None]), image(0)), (frame(1, [], [], lost=[1]), image(1))])
    writer.close()
    assert all(e["scene"] is None and e["identity"] is None for e in read(plain))


def test_the_snapshot_is_the_largest_detected_face_saved_as_a_private_jpeg(tmp_path):
    path = tmp_path / "ev.jsonl"
    writer, log = EventWriter(path), AppearanceLog()
    small, large, larger = [100, 100, 130, 130], [80, 80, 160, 160], [60, 60, 200, 200]
    feed(writer, log, [(frame(0, [small], [None]), image(10)),
                       (frame(1, [large], [None]), image(120)),                    # the best detected view
                       (frame(2, [larger], [None], predicted=True), image(200)),   # predicted: not a view
                       (frame(3, [small], [None]), image(30))])
    first = read(path)[0]
    snap = tmp_path / first["snapshot"]
    assert cv2.imread(str(snap)).mean() == pytest.approx(10, abs=2)            # at appearance: its first crop
    writer.write(log.finish())
    writer.close()
    last = read(path)[-1]
    assert last["event"] == "ended" and last["snapshot"] == first["snapshot"]
    crop = cv2.imread(str(snap))
    assert crop.mean() == pytest.approx(120, abs=2)                             # replaced by the best one
    assert crop.shape[:2] == (112, 112)                                         # the box and a 20 % margin
    for private in (snap, path):
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]      # written atomically


def test_a_track_that_comes_back_gets_a_new_appearance_and_snapshot(tmp_path):
    path = tmp_path / "ev.jsonl"
    writer, log = EventWriter(path, snapshots=True), AppearanceLog()
    box = [[10, 10, 60, 60]]
    feed(writer, log, [(frame(0, box, ["ada"]), image(50)), (frame(1, [], [], lost=[1]), image(0)),
                       (frame(2, box, ["ada"]), image(90))])
    writer.write(log.finish())
    writer.close()
    events = read(path)
    assert [(e["event"], e["snapshot"]) for e in events] == [
        ("appeared", "ev-track1-1.jpg"), ("ended", "ev-track1-1.jpg"),
        ("appeared", "ev-track1-2.jpg"), ("ended", "ev-track1-2.jpg")]


def test_no_snapshots_and_no_appeared_events_when_asked(tmp_path):
    path = tmp_path / "ev.jsonl"
    writer, log = EventWriter(path, appeared=False, snapshots=False), AppearanceLog()
    feed(writer, log, [(frame(0, [[10, 10, 60, 60]], ["ada"]), image(50))])
    writer.write(log.finish())
    writer.close()
    assert [(e["event"], e["snapshot"]) for e in read(path)] == [("ended", None)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.jsonl"]


def test_events_to_a_device_take_no_snapshots_and_without_a_file_go_only_to_the_sinks(tmp_path):
    assert EventWriter("/dev/null")._keeper is None            # no folder of JPEGs in /dev

    class Keep:
        def __init__(self):
            self.events, self.closed = [], False

        def send(self, event):
            self.events.append(event)

        def close(self):
            self.closed = True

    sink = Keep()
    writer, log = EventWriter(None, sinks=[sink]), AppearanceLog()
    feed(writer, log, [(frame(0, [[10, 10, 60, 60]], ["ada"]), image(50))])
    writer.write(log.finish())
    writer.close()
    assert [e["event"] for e in sink.events] == ["appeared", "ended"] and sink.closed
    assert all(e["snapshot"] is None for e in sink.events)


@pytest.mark.parametrize("keyword", ["appeared", "snapshots"])
def test_bad_keywords_are_refused(tmp_path, keyword):
    with pytest.raises(ValueError, match=keyword):
        EventWriter(tmp_path / "e.jsonl", **{keyword: "yes"})
