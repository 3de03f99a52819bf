"""Sources: files frame by frame, folders, live newest-frame reading, reconnects, clear errors."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from pipeline.sources import (ImageFolderSource, LiveSource, ReconnectPolicy, SourceError, VideoFileSource,
                              is_network_url, open_source, parse_camera)


def write_video(path, n=30, size=(160, 120), fps=25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:, :, 1] = (i * 8) % 256
        cv2.putText(img, str(i), (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4")


def test_video_file_gives_every_frame_in_order_with_timestamps(video):
    with open_source(str(video)) as src:
        assert isinstance(src, VideoFileSource) and not src.is_live
        assert (src.width, src.height, src.frame_count) == (160, 120, 30)
        assert src.fps == pytest.approx(25.0)
        frames = list(src)
    assert [f.index for f in frames] == list(range(30))
    assert frames[10].timestamp == pytest.approx(0.4, abs=1e-3)
    assert all(f.image.shape == (120, 160, 3) for f in frames)


def test_a_slow_consumer_of_a_file_loses_no_frame(video):
    with VideoFileSource(video, prefetch=2) as src:
        got = []
        for f in src:
            time.sleep(0.005)
            got.append(f.index)
    assert got == list(range(30))


def test_image_folder_in_name_order(tmp_path):
    for name in ["b.png", "a.jpg", "c.webp"]:
        cv2.imwrite(str(tmp_path / name), np.full((40, 50, 3), 100, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(str(tmp_path), image_fps=10.0)
    assert isinstance(src, ImageFolderSource) and src.frame_count == 3
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2] and frames[2].timestamp == pytest.approx(0.2)


def test_a_single_image_is_a_one_frame_source(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((30, 40, 3), np.uint8))
    assert len(list(open_source(str(tmp_path / "a.png")))) == 1


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.mp4", "no such file or directory"),
    (lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt", "not a video"),
    (lambda p: (p / "fake.mp4").write_bytes(b"\x00" * 1000) and p / "fake.mp4", "not a video"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no images"),
])
def test_bad_paths_raise_one_clear_error(tmp_path, make, message):
    with pytest.raises(SourceError, match=message):
        open_source(str(make(tmp_path)))


def test_unknown_url_scheme_and_absent_camera():
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        open_source("ftp://example.com/video.mp4")
    with pytest.raises(SourceError, match="cannot open camera 9"):
        open_source("9")


def test_nothing_serving_a_stream_is_an_error_at_open():
    with pytest.raises(SourceError, match="cannot open stream"):
        open_source("http://127.0.0.1:9/none.ts", open_timeout=2.0)


def test_spec_parsing():
    assert parse_camera("webcam") == 0 and parse_camera("2") == 2 and parse_camera("x.mp4") is None
    assert is_network_url("rtsp://h/s") and is_network_url("HTTPS://h/x.m3u8") and not is_network_url("a/b.mp4")


def test_live_source_keeps_only_the_newest_frame(video):
    # A file opened as a live source decodes as fast as it can; a slow reader must see gaps, not a backlog.
    src = LiveSource(str(video), reconnect=None)
    got = []
    while True:
        f = src.read()
        if f is None:
            break
        got.append(f.index)
        time.sleep(0.02)
    src.close()
    assert got == sorted(got) and len(set(got)) == len(got)
    assert len(got) < 30 and src.dropped_frames > 0
    assert src.dropped_frames + len(got) == 30


def test_live_source_reconnects_after_a_drop_and_marks_the_discontinuity(video):
    src = LiveSource(str(video), reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.1))
    frames = []
    deadline = time.monotonic() + 20
    while src.reconnects < 2 and time.monotonic() < deadline:
        f = src.read()
        if f is not None:
            frames.append(f)
    src.close()
    assert src.reconnects >= 2
    assert sum(f.discontinuity for f in frames) >= 1
    assert [f.index for f in frames] == sorted(f.index for f in frames)


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_live_source_interrupt_unblocks_read(video):
    src = LiveSource(str(video), reconnect=ReconnectPolicy(initial_delay=5.0, max_delay=5.0))
    while src.reconnects == 0 and src.read() is not None:
        pass
    src.interrupt()
    t0 = time.monotonic()
    while src.read() is not None:
        pass
    assert time.monotonic() - t0 < 2.0
    src.close()


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_live_source_that_gives_up_reconnecting_says_so_once(tmp_path):
    """The stream ends and cannot be reopened (the file is gone): read()
    returns the frames it had, then one SourceError, then None, and the
    decoding thread ends cleanly."""
    clip = write_video(tmp_path / "gone.mp4", n=10)
    src = LiveSource(str(clip), reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.05, max_attempts=2))
    clip.unlink()
    watchdog = threading.Timer(15.0, src.interrupt)  # so that a read() that never ends fails the test
    watchdog.start()
    got, error = [], None
    try:
        while True:
            try:
                f = src.read()
            except SourceError as exc:
                error = str(exc)
                break
            if f is None:
                break
            got.append(f.index)
    finally:
        watchdog.cancel()
    assert error is not None, "read() never reported that reconnecting gave up"
    assert "gone.mp4" in error and "gave up after 2 reconnect attempts" in error
    assert got and got == sorted(got) and src.reconnects == 0  # (the newest frames: earlier ones may be dropped)
    assert src.read() is None
    src.close()
    assert src._thread is None


@pytest.mark.parametrize("keyword, value", [
    ("reconnect_initial_delay", 0), ("reconnect_max_delay", 0.1), ("reconnect_max_attempts", -1),
    ("open_timeout", 0),
])
def test_live_source_bad_keywords(video, keyword, value):
    # The reconnect keywords of open_source are checked by ReconnectPolicy, open_timeout by LiveSource.
    with pytest.raises(ValueError, match=keyword):
        if keyword == "open_timeout":
            LiveSource(str(video), open_timeout=value)
        else:
            ReconnectPolicy(**{keyword.replace("reconnect_", ""): value})


def test_reconnect_policy_backs_off_and_gives_up():
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=1.5, max_attempts=3)
    delays = policy.delays()
    assert [next(delays) for _ in range(4)] == [0.5, 1.0, 1.5, 1.5]
    assert not policy.gives_up(2) and policy.gives_up(3)
    assert not ReconnectPolicy().gives_up(10 ** 6)            # 0 = never give up
    with pytest.raises(ValueError, match="reconnect"):
        LiveSource(0, reconnect=True)
