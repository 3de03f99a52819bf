"""The web page's rules as functions: the bind rule, file names, the image check, private writes, events."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from web.security import BindError, check_bind, is_loopback, presented_token
from web.timeline import read_events, snapshot_name, snapshot_path
from web.uploads import UploadError, check_file_name, check_image, photo_path, write_private


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("[::1]", True), ("127.0.0.2", True), ("0.0.0.0", False),
                                            ("192.168.1.5", False), ("example.com", False), ("::", False)])
def test_only_loopback_addresses_count_as_localhost(host, loopback):
    assert is_loopback(host) is loopback


def test_binding_beyond_localhost_needs_a_token_of_sixteen_characters():
    assert check_bind("127.0.0.1", None) is None
    with pytest.raises(BindError, match="--token TOKEN or set FACETRACK_TOKEN"):
        check_bind("0.0.0.0", None)
    with pytest.raises(BindError, match="at least 16 characters"):
        check_bind("0.0.0.0", "short")
    assert check_bind("0.0.0.0", "x" * 16) == "x" * 16


def test_the_token_is_read_from_the_bearer_header_the_token_header_or_the_cookie():
    assert presented_token({"authorization": "Bearer abc"}) == "abc"
    assert presented_token({"x-facetrack-token": "def"}) == "def"
    assert presented_token({"cookie": "a=1; facetrack_token=ghi"}) == "ghi"
    assert presented_token({"cookie": "a=1"}) is None


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.jpg", "..\\x.jpg", "C:\\x.jpg", ".hidden.jpg",
                                  "", "x" * 201, "bad\nname.jpg", ".."])
def test_a_file_name_with_a_path_or_odd_characters_is_refused(name):
    with pytest.raises(UploadError):
        check_file_name(name)


def test_a_plain_file_name_is_accepted():
    assert check_file_name("Ada Lovelace (2).jpg") == "Ada Lovelace (2).jpg"


def _jpeg(width=64, height=48) -> bytes:
    image = np.full((height, width, 3), 127, np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_the_image_check_decodes_and_names_the_real_format():
    assert check_image(_jpeg()) == ".jpg"
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    assert check_image(png) == ".png"


@pytest.mark.parametrize("data, status", [(b"", 400), (b"plain text, not a photo", 415),
                                          (b"<?php system($_GET['c']); ?>", 415)])
def test_what_is_not_an_image_is_refused(data, status):
    with pytest.raises(UploadError) as info:
        check_image(data)
    assert info.value.status == status


def test_a_truncated_image_is_refused_as_damaged():
    with pytest.raises(UploadError, match="damaged JPEG") as info:
        check_image(_jpeg(640, 480)[:300])
    assert info.value.status == 415


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
    with pytest.raises(UploadError, match="64x48 pixels") as info:
        check_image(_jpeg(), max_pixels=1000)
    assert info.value.status == 413


def test_photos_are_kept_inside_the_folder_under_a_name_of_their_own(tmp_path):
    path = photo_path(tmp_path, "Ada", b"data", ".jpg")
    assert path.parent == (tmp_path / "Ada").resolve() and path.suffix == ".jpg"
    for person in ("..", "../x", "a/../../b"):
        with pytest.raises(UploadError):
            photo_path(tmp_path / "photos", person, b"data", ".jpg")


def test_private_writes_are_atomic_and_owner_only(tmp_path):
    path = tmp_path / "new" / "a.jpg"
    write_private(path, b"abc")
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.jpg"]       # no temporary file left


def test_events_are_read_oldest_first_with_their_snapshots_and_a_cut_line_skipped(tmp_path):
    rows = [dict(track_id=2, name=None, score=None, first_frame=30, last_frame=40, first_time=1.0,
                 last_time=1.3, frames_seen=11),
            dict(track_id=1, name="Ada", score=0.7, first_frame=0, last_frame=20, first_time=0.0,
                 last_time=0.7, frames_seen=21)]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"track_id": 3, "na')
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / snapshot_name(1, 0)).write_bytes(_jpeg())
    found, skipped = read_events(events, snaps)
    assert [e.track_id for e in found] == [1, 2] and skipped == 1
    assert found[0].snapshot == "/api/events/snapshots/1/0" and found[1].snapshot is None
    assert found[0].name == "Ada" and found[1].name is None


def test_the_pipeline_s_appeared_and_ended_events_are_one_appearance_with_the_writer_s_snapshot(tmp_path):
    from pipeline.appearances import Appearance

    app = Appearance(5, "Ada", 0.61, 10, 40, 0.4, 1.6, 31, number=1, xyxy=(1, 2, 30, 40), first_seen=1e9,
                     last_seen=1e9 + 1)
    events = tmp_path / "events.jsonl"
    (tmp_path / "events-track5-1.jpg").write_bytes(_jpeg())
    lines = [app.to_event(kind, snapshot="events-track5-1.jpg") for kind in ("appeared", "ended")]
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (found,), skipped = read_events(events, None)
    assert skipped == 0 and (found.track_id, found.name, found.frames_seen) == (5, "Ada", 31)
    assert found.snapshot == "/api/events/snapshots/5/10"
    assert snapshot_path(events, None, 5, 10) == tmp_path / "events-track5-1.jpg"
    assert snapshot_path(events, None, 5, 11) is None


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "error: refusing to listen on 0.0.0.0"),
    (["--host", "192.168.0.1", "--token", "short"], "error: the token must be at least 16 characters long"),
    (["--max-frames", "5"], "error: --max-frames needs --source"),
    (["--max-upload-mb", "0"], "error: --max-upload-mb must be > 0"),
])
def test_serve_refuses_bad_arguments_with_one_error_line_before_anything_starts(tmp_path, capsys, monkeypatch,
                                                                              args, message):
    from facetrack.serve import EXIT_BAD_INPUT, main

    monkeypatch.delenv("FACETRACK_TOKEN", raising=False)
    assert main(["--gallery", str(tmp_path / "g.db"), *args]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_gallery_that_is_neither_a_folder_nor_a_db(tmp_path, capsys):
    from facetrack.serve import main

    assert main(["--gallery", str(tmp_path / "missing"), "--port", "1"]) == 2
    assert "no such photo folder, and not a .db file" in capsys.readouterr().err
