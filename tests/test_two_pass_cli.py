"""Two-pass mode from the command line on a real clip: analyse, render, correct a name, render again."""
from __future__ import annotations

import csv
import json
import os
import stat

import pytest

from test_demo import count_frames, demo, headless_env


def _names(path):
    with open(path, newline="") as f:
        return [(int(r["frame"]), int(r["track_id"]), r["name"]) for r in csv.DictReader(f)]


@pytest.mark.integration
@pytest.mark.slow
def test_two_pass_then_a_corrected_name_rendered_without_the_models(tmp_path, shared_data, shared_models):
    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    out, names, analysis = tmp_path / "out.mp4", tmp_path / "names.csv", tmp_path / "out.analysis.json"
    env = headless_env(FACETRACK_MODELS_DIR=shared_models)
    proc = demo("--source", clip, "--gallery", shared_data / "gallery", "--gallery-db", tmp_path / "g.db",
                "--two-pass", "--output", out, "--names", names, "--max-frames", "120", "--no-show", "--quiet",
                env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "pass 1: 120 frames analysed" in proc.stderr and f"analysis in {analysis}" in proc.stderr
    assert stat.S_IMODE(os.stat(analysis).st_mode) == 0o600
    assert count_frames(out) == 120
    doc = json.loads(analysis.read_text())
    first = _names(names)
    # Every frame of a track shows one name in two-pass mode: the one its identity ended with.
    by_track = {}
    for _, tid, name in first:
        by_track.setdefault(tid, set()).add(name)
    assert all(len(v) == 1 for v in by_track.values()), by_track
    (lin,) = [i for i in doc["identities"] if i["name"] == "lin_manuel_miranda"][:1]

    # Correct the name in the file and render again: no models are loaded (no FACETRACK_MODELS_DIR at all).
    lin["name"] = "Lin-Manuel Miranda"
    analysis.write_text(json.dumps(doc))
    again_names, again_out = tmp_path / "names2.csv", tmp_path / "out2.mp4"
    proc = demo("--render", analysis, "--output", again_out, "--names", again_names, "--no-show", "--quiet",
                env=headless_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert count_frames(again_out) == 120
    rows = _names(again_names)
    assert [(f, t) for f, t, _ in rows] == [(f, t) for f, t, _ in first]
    members = set(lin["tracks"])
    assert any(t in members for _, t, _ in rows)
    assert all(n == "Lin-Manuel Miranda" for _, t, n in rows if t in members)
    # The other identities (Lin-Manuel Miranda again in a later scene, for one) keep their names.
    assert [r for r in rows if r[1] not in members] == [r for r in first if r[1] not in members]


@pytest.mark.integration
def test_render_refuses_a_video_of_another_size(tmp_path, shared_data):
    doc = {"format": "facetrack-analysis", "version": 1, "source": "x", "width": 320, "height": 200, "fps": 25,
           "identities": [], "tracks": [], "frames": []}
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))
    proc = demo("--render", path, "--source", shared_data / "video" / "short_hamilton_clip.mp4", "--no-show",
                "--quiet", timeout=120)
    assert proc.returncode == 2 and "was made on a 320x200 video" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_two_pass_refuses_a_live_source(tmp_path):
    proc = demo("--source", "rtsp://127.0.0.1:9/x", "--two-pass", "--no-show", "--quiet", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
