"""Fault injection: signals, killed processes, full and failing disks, a dropped re-stream.

Every test here runs real processes (``tests/fault_run.py``: the real run
loop, video sink, ffmpeg and writers around a scripted pipeline, no weights),
sends real signals and writes onto real file systems: a small tmpfs mounted
for the test (skipped, with the reason, where mounting is impossible) and
``/dev/full``. The gallery faults are in ``test_reliability_gallery.py`` and
the end-to-end ones with the real models in ``test_demo.py``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
FAULT_RUN = [sys.executable, str(REPO / "tests" / "fault_run.py")]
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def start(out, *args):
    return subprocess.Popen(FAULT_RUN + [str(out), *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_frames(proc, n, timeout=60.0) -> None:
    """Read ``frame i`` lines from the child until frame ``n`` is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the run ended before frame {n}: {proc.stderr.read()}")
        if line.strip() == f"frame {n}":
            return
    raise AssertionError(f"no frame {n} after {timeout} s")


def processes_writing(path) -> list:
    """Pids of the ffmpeg processes whose command line ends with ``path`` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(args) > 1 and b"ffmpeg" in Path(args[0].decode()).name.encode() and str(path).encode() in args:
                pids.append(int(entry.name))
    return pids


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), err


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs, mounted for the test (needs root and mount permission; else skipped)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the full-disk test cannot run here")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); the full-disk test cannot run")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# -- signals ---------------------------------------------------------------------------
@needs_ffmpeg
@pytest.mark.parametrize("signum, video", [
    (signal.SIGTERM, "out.mp4"), (signal.SIGTERM, "out.mkv"), (signal.SIGTERM, "out.avi"),
    (signal.SIGTERM, "out.mov"), (signal.SIGINT, "out.mp4"), (signal.SIGHUP, "out.mkv"),
])
def test_a_stop_signal_mid_run_finishes_the_frame_and_closes_every_output(tmp_path, signum, video):
    proc = start(tmp_path, "--frames", 100000, "--delay", 0.01, "--video", video)
    try:
        wait_for_frames(proc, 40)
        proc.send_signal(signum)
        summary, err = finish(proc)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert summary["stop_reason"] == "interrupted" and summary["stop_signal"] == signum
    frames = summary["frames"]
    assert frames >= 41
    assert count_frames(tmp_path / video) == frames            # every processed frame, playable
    apps = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [a["track_id"] for a in apps] == [2, 1]             # the ended one, then the open one at exit
    assert apps[1]["last_frame"] == frames - 1
    rows = (tmp_path / "tracks.txt").read_text().splitlines()
    assert int(rows[-1].split(",")[0]) == frames


@needs_ffmpeg
@pytest.mark.parametrize("video, lost_at_most", [("out.mp4", 26), ("out.mkv", 26), ("out.avi", 2)])
def test_sigkill_loses_at_most_the_last_second_of_video_and_nothing_of_the_lines(tmp_path, video, lost_at_most):
    proc = start(tmp_path, "--frames", 100000, "--delay", 0.01, "--video", video)
    try:
        wait_for_frames(proc, 60)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    time.sleep(1.0)                          # ffmpeg (its own session) sees the end of its input and finishes
    rows = (tmp_path / "tracks.txt").read_text().splitlines()
    done = int(rows[-1].split(",")[0])
    assert done >= 60 and all(len(r.split(",")) == 10 for r in rows)
    assert json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])["track_id"] == 2
    assert count_frames(tmp_path / video) >= done - lost_at_most


@needs_ffmpeg
@pytest.mark.parametrize("video", ["out.mp4", "out.mkv"])
def test_the_encoder_killed_mid_run_is_one_write_error_and_the_video_keeps_its_frames(tmp_path, video):
    proc = start(tmp_path, "--frames", 100000, "--delay", 0.01, "--video", video)
    try:
        wait_for_frames(proc, 60)
        pids = processes_writing(tmp_path / video)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        summary, err = finish(proc)
    finally:
        proc.kill()
    assert proc.returncode == 74, err
    assert summary["stop_reason"] == "write error"
    assert len(summary["output_errors"]) == 1 and str(tmp_path / video) in summary["output_errors"][0]
    assert count_frames(tmp_path / video) >= 60 - 26
    assert (tmp_path / "events.jsonl").read_text().count("\n") == 2      # the open track written at the stop


# -- full disks ----------------------------------------------------------------------------
@needs_ffmpeg
def test_a_full_disk_is_one_clear_error_and_what_was_written_stays_readable(small_fs):
    proc = start(small_fs, "--frames", 100000, "--delay", 0, "--video", "out.mp4")
    summary, err = finish(proc, timeout=120)
    assert proc.returncode == 74, err
    assert "Traceback" not in err
    assert summary["stop_reason"] == "write error"
    first = summary["output_errors"][0]
    assert "No space left on device" in first and str(small_fs) in first
    assert count_frames(small_fs / "out.mp4") > 100
    rows = (small_fs / "tracks.txt").read_text().splitlines()
    assert rows and all(len(r.split(",")) == 10 for r in rows)          # no half line at the end
    for line in (small_fs / "events.jsonl").read_text().splitlines():
        json.loads(line)


def test_events_on_dev_full_stop_the_run_with_one_error_naming_the_file(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full does not exist here")
    proc = start(tmp_path, "--frames", 200, "--delay", 0, "--video", "out.avi", "--events", "/dev/full")
    summary, err = finish(proc)
    assert proc.returncode == 74, err
    assert "Traceback" not in err
    assert summary["output_errors"] == ["cannot write events /dev/full: No space left on device"]
    assert summary["frames"] == 21                    # the first event is written on frame 20
    assert count_frames(tmp_path / "out.avi") == 21
    assert (tmp_path / "tracks.txt").read_text().count("\n") == 41


def test_opencv_fallback_notices_a_full_disk(small_fs):
    proc = start(small_fs, "--frames", 100000, "--delay", 0, "--video", "out.avi", "--backend", "opencv")
    summary, err = finish(proc, timeout=120)
    assert proc.returncode == 74, err
    assert any("No space left on device" in e for e in summary["output_errors"]), summary


def test_a_line_writer_cut_short_keeps_only_complete_lines(small_fs):
    from pipeline.events import OutputError, TracksWriter
    from pipeline.results import FrameResult

    writer = TracksWriter(small_fs / "t.txt")
    result = FrameResult(0, 0.0, np.arange(50), np.tile(np.float32([1, 2, 3, 4]), (50, 1)),
                         np.ones(50, np.float32), [None] * 50, np.zeros(50, np.float32), np.zeros(50, bool))
    with pytest.raises(OutputError, match=r"cannot write tracks .*No space left on device"):
        for i in range(100000):
            result.frame_index = i
            writer.write(result)
    with pytest.raises(OutputError):                 # and on every later write
        writer.write(result)
    writer.close()
    text = (small_fs / "t.txt").read_text()
    assert text.endswith("\n") and text.count("\n") == writer.lines


# -- pacing a live source ---------------------------------------------------------------------
def test_a_live_source_written_to_a_file_lasts_as_long_as_the_run(tmp_path):
    from pipeline.sinks import VideoFileSink

    now = [0.0]
    sink = VideoFileSink(tmp_path / "live.avi", fps=25, pace_to_clock=True, clock=lambda: now[0])
    frame = np.zeros((48, 64, 3), np.uint8)
    for _ in range(10):                    # 10 processed frames, 0.4 s apart: 4 s of stream
        sink.write(frame)
        now[0] += 0.4
    sink.close()
    assert sink.frames_written == 91       # 3.6 s at 25 fps, plus the first frame
    assert count_frames(tmp_path / "live.avi") == 91


# -- a re-stream whose server goes away --------------------------------------------------------
SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    while True:
        data = c.recv(65536)
        if not data:
            break
        sys.stdout.write(f"got {len(data)}\n"); sys.stdout.flush()
"""


def serve_tcp(port):
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "listening"
    return proc


@needs_ffmpeg
def test_a_restream_reconnects_after_its_server_is_killed_and_restarted():
    from pipeline.live_source import ReconnectPolicy
    from pipeline.sinks import FFmpegStreamSink

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve_tcp(port)
    sink = FFmpegStreamSink(f"tcp://127.0.0.1:{port}", fps=25,
                            reconnect=ReconnectPolicy(initial_delay=0.2, max_delay=0.5))
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0:                       # streaming for a while
            sink.write(frame)
            time.sleep(0.02)
        server.kill()
        server.wait()
        t1 = time.monotonic()
        while sink.reconnects == 0 and time.monotonic() - t1 < 20:   # the drop is noticed
            sink.write(frame)
            time.sleep(0.02)
        assert sink.reconnects >= 1
        time.sleep(1.0)
        server = serve_tcp(port)
        before = sink.frames_written
        t2 = time.monotonic()
        while sink.frames_written < before + 50 and time.monotonic() - t2 < 20:
            sink.write(frame)
            time.sleep(0.02)
        assert sink.frames_written >= before + 50
        assert server.stdout.readline().startswith("got ")           # the new server receives the stream
    finally:
        sink.close()
        server.kill()
        server.wait()
    assert sink.frames_dropped > 0


@needs_ffmpeg
def test_a_restream_that_never_connects_is_an_error_not_a_retry():
    from pipeline.sinks import FFmpegStreamSink, SinkError

    sink = FFmpegStreamSink("tcp://127.0.0.1:9", fps=25)
    frame = np.zeros((120, 160, 3), np.uint8)
    with pytest.raises(SinkError, match="ffmpeg stopped streaming"):
        for _ in range(500):
            sink.write(frame)
            time.sleep(0.005)
    sink.close()


# -- the real demo (weights and video from ../shared) --------------------------------------------
def demo_cmd(shared_data, *args):
    return [sys.executable, str(REPO / "demo.py"), "--source",
            str(shared_data / "video" / "short_hamilton_clip.mp4"), "--no-show", "--quiet", "--device", "cpu",
            *map(str, args)]


def demo_env(shared_models):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["FACETRACK_MODELS_DIR"] = str(shared_models)
    return env


def wait_for_rows(path, rows, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} has no {rows} rows after {timeout} s")


@pytest.mark.integration
@pytest.mark.slow
@needs_ffmpeg
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_mid_run_of_the_demo_leaves_a_playable_video_and_complete_events(tmp_path, shared_data,
                                                                                 shared_models, signum):
    out, events, tracks = tmp_path / "o.mp4", tmp_path / "e.jsonl", tmp_path / "t.txt"
    proc = subprocess.Popen(demo_cmd(shared_data, "--output", out, "--events", events, "--tracks", tracks),
                            cwd=REPO, env=demo_env(shared_models), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for_rows(tracks, 10)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    n = count_frames(out)
    assert n > 0 and f"{n} frames" in err                # every frame up to the signal, playable
    apps = [json.loads(line) for line in events.read_text().splitlines()]
    assert apps
    last_row_frame = max(int(line.split(",")[0]) for line in tracks.read_text().splitlines())
    assert max(a["last_frame"] for a in apps) + 1 == last_row_frame


@pytest.mark.integration
@pytest.mark.slow
@needs_ffmpeg
def test_the_demo_on_a_full_disk_is_one_error_line_and_keeps_what_it_wrote(small_fs, shared_data, shared_models):
    out, events, tracks = small_fs / "o.mp4", small_fs / "e.jsonl", small_fs / "t.txt"
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * 120 * 1024)           # leaves about 130 KiB: a few seconds of video
    proc = subprocess.run(demo_cmd(shared_data, "--output", out, "--events", events, "--tracks", tracks),
                          cwd=REPO, env=demo_env(shared_models), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 74, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr
    assert count_frames(out) > 0
    assert all(len(r.split(",")) == 10 for r in tracks.read_text().splitlines())
    for line in events.read_text().splitlines():
        json.loads(line)


@pytest.mark.integration
@pytest.mark.slow
def test_the_demo_with_events_on_dev_full_is_one_error_line(tmp_path, shared_data, shared_models):
    proc = subprocess.run(demo_cmd(shared_data, "--events", "/dev/full", "--tracks", tmp_path / "t.txt",
                                   "--max-frames", 60),
                          cwd=REPO, env=demo_env(shared_models), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 74, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "/dev/full" in errors[0] and "No space left on device" in errors[0]
    assert "incomplete: /dev/full" in proc.stderr and f"wrote {tmp_path / 't.txt'}" in proc.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_the_demo_refuses_a_damaged_gallery_and_exits_right_after_its_summary(tmp_path, shared_data,
                                                                             shared_models):
    from test_reliability_gallery import make_gallery, zero_page

    db = make_gallery(tmp_path / "g.db")
    zero_page(db, 20)
    proc = subprocess.run(demo_cmd(shared_data, "--gallery", db, "--max-frames", 5), cwd=REPO,
                          env=demo_env(shared_models), capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "integrity_check" in lines[0], proc.stderr
    # A good run leaves within a second of its summary (no seconds of interpreter teardown).
    t0 = time.monotonic()
    p = subprocess.Popen(demo_cmd(shared_data, "--max-frames", 5), cwd=REPO, env=demo_env(shared_models),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    summary_at = None
    for line in p.stderr:
        if "frames in" in line:
            summary_at = time.monotonic()
    p.wait(timeout=60)
    assert p.returncode == 0 and summary_at is not None and t0 < summary_at
    assert time.monotonic() - summary_at < 1.5
