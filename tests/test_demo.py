"""demo.py end to end: bad input, a real video with a gallery, Ctrl-C, and a real network stream."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = [sys.executable, str(REPO / "demo.py")]
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def headless_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def demo(*args, env=None, timeout=240):
    return subprocess.run(DEMO + [str(a) for a in args], cwd=REPO, env=env or headless_env(),
                          capture_output=True, text=True, timeout=timeout)


def count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def assert_clean_error(proc, message):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr


@pytest.mark.parametrize("make_args, message", [
    (lambda p: ["--source", p / "missing.mp4"], "no such file or directory"),
    (lambda p: ["--source", p / "notes.txt"], "not a video"),
    (lambda p: ["--source", p / "fake.mp4"], "not a video"),
    (lambda p: ["--source", p / "empty"], "no images"),
    (lambda p: ["--source", "9"], "cannot open camera 9"),
    (lambda p: ["--source", "ftp://host/x.mp4"], "unsupported URL scheme"),
    (lambda p: ["--source", "http://127.0.0.1:9/x.ts"], "cannot open stream"),
    (lambda p: ["--source", p / "clip.avi", "--config", p / "bad.yaml"], "unknown key tracker.max_agee"),
    (lambda p: ["--source", p / "clip.avi", "--config", p / "missing.yaml"], "config file not found"),
    (lambda p: ["--source", p / "clip.avi", "--output", p / "out.xyz"], "unknown video extension"),
    (lambda p: ["--source", p / "clip.avi", "--events", p / "no" / "e.jsonl"], "does not exist"),
    (lambda p: ["--source", p / "clip.avi", "--names", p / "no" / "names.csv"], "cannot write names"),
    (lambda p: ["--source", p / "clip.avi", "--max-frames", "0"], "--max-frames must be >= 1"),
])
def test_bad_input_is_one_clear_message_and_a_non_zero_exit(tmp_path, make_args, message):
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "fake.mp4").write_bytes(os.urandom(2000))
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("tracker:\n  max_agee: 3\n")
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert_clean_error(demo(*make_args(tmp_path), "--no-show", "--quiet", timeout=60), message)


@pytest.mark.integration
def test_a_missing_gallery_is_a_clear_error(tmp_path, shared_data, shared_models):
    proc = demo("--source", shared_data / "video" / "short_hamilton_clip.mp4", "--gallery", tmp_path / "nope",
                "--no-show", "--quiet", env=headless_env(FACETRACK_MODELS_DIR=shared_models))
    assert_clean_error(proc, "no such file or directory")


# Shots of the Hamilton clip (data/MANIFEST.md) and who may be named in each.
HAMILTON_SHOTS = [(0, 19, {"lin_manuel_miranda", "alex_lacamoire"}), (20, 81, {"alex_lacamoire"}),
                  (82, 210, {"lin_manuel_miranda"}), (211, 274, {"barack_obama"})]


@pytest.mark.integration
@pytest.mark.slow
def test_end_to_end_on_the_hamilton_clip(tmp_path, shared_data, shared_models):
    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    out, events, tracks, db = tmp_path / "out.mp4", tmp_path / "ev.jsonl", tmp_path / "tr.txt", tmp_path / "g.db"
    names = tmp_path / "names.csv"
    env = headless_env(FACETRACK_MODELS_DIR=shared_models)
    proc = demo("--source", clip, "--gallery", shared_data / "gallery", "--gallery-db", db, "--output", out,
                "--events", events, "--tracks", tracks, "--names", names, "--device", "cpu", "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no display" in proc.stderr            # headless detected, window skipped with a message
    assert "275 frames" in proc.stderr and "lin_manuel_miranda" in proc.stderr
    # The audience's Unknown faces are grouped into people in the summary (gallery.cluster).
    assert re.search(r"Unknown: \d+ tracks? of about \d+ (person|people)", proc.stderr), proc.stderr

    assert count_frames(out) == 275
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, abs=0.01)

    rows = [line.split(",") for line in tracks.read_text().splitlines()]
    assert rows and all(len(r) == 10 for r in rows)
    assert all(1 <= int(r[0]) <= 275 and float(r[4]) > 0 and float(r[5]) > 0 for r in rows)

    # --names: one row per tracks row, the name shown on that frame, within the shot's cast.
    with open(names, newline="") as f:
        shown = list(csv.DictReader(f))
    assert [(int(r["frame"]), int(r["track_id"])) for r in shown] == [(int(r[0]), int(r[1])) for r in rows]
    for r in shown:
        if r["name"]:
            cast = next(c for first, last, c in HAMILTON_SHOTS if first <= int(r["frame"]) - 1 <= last)
            assert r["name"] in cast, f"wrong name on frame {r['frame']}: {r['name']}"
    assert sum(r["name"] == "lin_manuel_miranda" for r in shown) >= 100

    apps = [json.loads(line) for line in events.read_text().splitlines()]
    assert apps
    for a in apps:
        assert a["first_frame"] <= a["last_frame"] and a["frames_seen"] >= 1
        if a["name"] is None:
            continue
        shots = [names for first, last, names in HAMILTON_SHOTS if a["first_frame"] <= last and a["last_frame"] >= first]
        assert len(shots) == 1, f"an appearance spans a cut: {a}"
        assert a["name"] in shots[0], f"wrong name: {a}"
    lin = [a for a in apps if a["name"] == "lin_manuel_miranda" and a["first_frame"] >= 82]
    assert lin and sum(a["frames_seen"] for a in lin) >= 100, apps

    # Scored against the hand labels of 11 frames (evaluation/labels): no wrong
    # name, Lin and Obama named on their labelled frames after the first.
    from evaluation import gt as gtio, metrics

    labels = gtio.read_sparse_labels(REPO / "evaluation" / "labels"
                                     / "short_hamilton_clip.csv", gallery_dir=shared_data / "gallery")
    score = metrics.score(labels, gtio.attach_names(gtio.read_mot(tracks), names_file=names))
    naming = score["naming"]
    assert naming["wrong_name"] == 0 and naming["named_non_enrolled"] == 0, naming
    assert naming["correct"] >= 7 and naming["matched_boxes"] >= 19, naming

    # The enrolled database is reused directly (and an existing one is enrolled incrementally).
    proc = demo("--source", clip, "--gallery", db, "--no-show", "--quiet", "--max-frames", 5, env=env)
    assert proc.returncode == 0 and "5 frames" in proc.stderr, proc.stderr


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_leaves_a_playable_mp4_and_flushed_events(tmp_path, shared_data, shared_models):
    out, events, tracks = tmp_path / "out.mp4", tmp_path / "ev.jsonl", tmp_path / "tr.txt"
    proc = subprocess.Popen(
        DEMO + ["--source", str(shared_data / "video" / "short_hamilton_clip.mp4"), "--output", str(out),
                "--events", str(events), "--tracks", str(tracks), "--no-show", "--quiet", "--device", "cpu"],
        cwd=REPO, env=headless_env(FACETRACK_MODELS_DIR=shared_models),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until tracks are being written (frames flowing), then interrupt.
        wait_for(lambda: tracks.exists() and tracks.read_text().count("\n") >= 10, 120, "tracks rows")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    n = count_frames(out)
    assert 0 < n < 275
    # The summary's frame count equals what the file holds.
    assert f"{n} frames" in err
    apps = [json.loads(line) for line in events.read_text().splitlines()]
    assert apps, "live tracks are written as events at exit"
    last_row_frame = max(int(line.split(",")[0]) for line in tracks.read_text().splitlines())
    assert max(a["last_frame"] for a in apps) + 1 == last_row_frame


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(video, port):
    """ffmpeg as an HTTP server of an MPEG-TS stream, in real time, on localhost."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(video),
         "-an", "-c:v", "copy", "-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}/live.ts"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.integration
@pytest.mark.slow
@needs_ffmpeg
def test_a_network_stream_that_drops_is_reconnected_and_the_run_goes_on(tmp_path, shared_data, shared_models):
    from facetrack.build import build_models, build_pipeline
    from facetrack.config import load_config
    from pipeline.events import TracksWriter
    from pipeline.loop import run
    from pipeline.sources import SourceError, open_source

    port = free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    server = serve(shared_data / "video" / "short_hamilton_clip.mp4", port)
    try:
        config = load_config()
        detector, embedder = build_models(config, models_dir=shared_models, device="cpu", progress=False)
        pipeline = build_pipeline(config, detector, embedder)
        # The server takes one client: no probing connection, just try to open until it is up.
        source = None
        deadline = time.monotonic() + 20
        while source is None:
            try:
                source = open_source(url, reconnect_initial_delay=0.2, reconnect_max_delay=1.0, open_timeout=5.0)
            except SourceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert source.is_live
        results, outcome = [], {}

        def loop():
            outcome["summary"] = run(pipeline, source, [], tracks_writer=TracksWriter(tmp_path / "t.txt"),
                                     max_frames=150, on_frame=results.append)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        wait_for(lambda: len(results) >= 40, 60, "40 frames")
        server.kill()
        server.wait()
        before = len(results)
        time.sleep(2.0)                          # down for a while: reconnect attempts fail
        server = serve(shared_data / "video" / "short_hamilton_clip.mp4", port)
        thread.join(timeout=120)
        assert not thread.is_alive(), "the run did not continue after the server came back"
    finally:
        server.kill()
        server.wait()
    summary = outcome["summary"]
    assert summary.frames == 150 and summary.stop_reason == "max_frames"
    assert summary.reconnects >= 1
    assert len(results) - before > 50          # frames after the restart
    # The first frame after the reconnect was handled as a shot cut (tracks reset by appearance).
    assert any(r.scene_cut for r in results[before - 5:])
    assert [r.frame_index for r in results] == sorted(r.frame_index for r in results)


@pytest.mark.integration
def test_a_bad_device_is_a_clear_error(shared_data, shared_models):
    proc = demo("--source", shared_data / "video" / "short_hamilton_clip.mp4", "--device", "tpu", "--no-show",
                "--quiet", env=headless_env(FACETRACK_MODELS_DIR=shared_models))
    assert_clean_error(proc, "tpu")


@pytest.mark.integration
@needs_ffmpeg
def test_restream_to_hls_from_the_command_line(tmp_path, shared_data, shared_models):
    playlist = tmp_path / "live" / "out.m3u8"
    playlist.parent.mkdir()
    proc = demo("--source", shared_data / "video" / "short_hamilton_clip.mp4", "--output", playlist,
                "--output", tmp_path / "copy.mp4", "--max-frames", 60, "--no-show", "--quiet",
                env=headless_env(FACETRACK_MODELS_DIR=shared_models))
    assert proc.returncode == 0, proc.stderr
    assert count_frames(playlist) == 60 and count_frames(tmp_path / "copy.mp4") == 60


@pytest.mark.integration
@pytest.mark.slow
@needs_ffmpeg
@pytest.mark.parametrize("scheme", ["rtmp", "rtsp"])
def test_restream_to_a_real_rtmp_or_rtsp_server(tmp_path, shared_data, shared_models, scheme):
    port = free_port()
    url = f"{scheme}://127.0.0.1:{port}/live/test"
    received = tmp_path / "received.mkv"
    # ffmpeg as the receiving server (it listens, our ffmpeg sink publishes to it).
    listen = ["-listen", "1"] if scheme == "rtmp" else ["-rtsp_flags", "listen"]
    server = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *listen, "-i", url,
                               "-c", "copy", str(received)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        proc = demo("--source", shared_data / "video" / "short_hamilton_clip.mp4", "--output", url,
                    "--max-frames", 90, "--no-show", "--quiet",
                    env=headless_env(FACETRACK_MODELS_DIR=shared_models))
        assert proc.returncode == 0, proc.stderr
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert count_frames(received) == 90
