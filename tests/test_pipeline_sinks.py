"""Sinks: playable video files, ffmpeg re-streams, headless detection, clear errors."""
from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from pipeline.sinks import (FFmpegStreamSink, SinkError, VideoFileSink, display_available, ffmpeg_output_args,
                            make_output_sink)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def frames(n, size=(160, 120)):
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:, :, 2] = (i * 10) % 256
        yield img


def count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n, cap.get(cv2.CAP_PROP_FPS)


@pytest.mark.parametrize("name", ["out.mp4", "out.avi", "out.mkv"])
def test_video_file_has_every_frame_at_the_source_fps(tmp_path, name):
    sink = make_output_sink(str(tmp_path / name), fps=12.5)
    assert isinstance(sink.sink, VideoFileSink)
    for f in frames(20):
        assert sink.write(f) is True
    sink.close()
    sink.close()   # idempotent
    n, fps = count_frames(tmp_path / name)
    assert n == 20 and fps == pytest.approx(12.5, rel=0.01)


def test_frames_of_another_size_are_resized(tmp_path):
    sink = VideoFileSink(tmp_path / "o.mp4", fps=10)
    sink.write(np.zeros((120, 160, 3), np.uint8))
    sink.write(np.zeros((240, 320, 3), np.uint8))
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 160 and count_frames(tmp_path / "o.mp4")[0] == 2


@pytest.mark.parametrize("target, message", [
    ("out.xyz", "unknown video extension"), ("missing/out.mp4", "does not exist"),
    ("ftp://host/x", "cannot stream"),
])
def test_bad_outputs_raise_one_clear_error(tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SinkError, match=message):
        make_output_sink(target, fps=25)


def test_ffmpeg_arguments_per_target():
    assert ffmpeg_output_args("rtmp://h/live/key", 25)[-3:] == ["-f", "flv", "rtmp://h/live/key"]
    assert ffmpeg_output_args("rtsp://h:8554/s", 25)[-5:] == ["-f", "rtsp", "-rtsp_transport", "tcp",
                                                             "rtsp://h:8554/s"]
    assert ffmpeg_output_args("udp://127.0.0.1:5000", 25)[-3:] == ["-f", "mpegts", "udp://127.0.0.1:5000"]
    hls = ffmpeg_output_args("out/live.m3u8", 25)
    assert "hls" in hls and hls[-1] == "out/live.m3u8"


def test_headless_is_detected(monkeypatch, tmp_path):
    import socket
    import sys
    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY/WAYLAND_DISPLAY only on Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_available() is False
    # A DISPLAY nobody serves is headless too (Qt would abort the process on it).
    monkeypatch.setenv("DISPLAY", ":97")
    assert display_available() is False
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-97")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert display_available() is False
    (tmp_path / "wayland-97").write_text("")
    assert display_available() is True
    monkeypatch.delenv("WAYLAND_DISPLAY")
    with socket.socket() as server:           # an X server on TCP 6000 + N
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("DISPLAY", f"127.0.0.1:{server.getsockname()[1] - 6000}.0")
        assert display_available() is True


@needs_ffmpeg
def test_hls_restream_writes_a_playlist_that_decodes(tmp_path):
    target = tmp_path / "live.m3u8"
    sink = make_output_sink(str(target), fps=25)
    assert isinstance(sink.sink, FFmpegStreamSink)
    for f in frames(75, size=(161, 121)):      # odd sizes are made even for yuv420p
        sink.write(f)
    sink.close()
    assert target.exists() and list(tmp_path.glob("*.ts"))
    n, _ = count_frames(target)
    assert n == 75


@needs_ffmpeg
def test_udp_restream_reaches_a_listener():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.settimeout(10)
        sink = FFmpegStreamSink(f"udp://127.0.0.1:{port}", fps=25)
        for f in frames(25):
            sink.write(f)
        data, _ = s.recvfrom(65536)
        sink.close()
    assert data[0] == 0x47          # an MPEG-TS packet


@needs_ffmpeg
def test_a_dead_stream_target_is_a_clear_error():
    sink = FFmpegStreamSink("rtmp://127.0.0.1:9/live/x", fps=25)
    with pytest.raises(SinkError, match="ffmpeg stopped streaming"):
        for f in frames(500):
            sink.write(f)
    sink.close()


def test_background_sink_raises_the_worker_error_and_still_closes_the_sink():
    from pipeline.sinks import BackgroundSink, Sink

    class Failing(Sink):
        closed = False

        def write(self, frame):
            raise SinkError("disk full")

        def close(self):
            Failing.closed = True

    sink = BackgroundSink(Failing(), queue_size=1)
    with pytest.raises(SinkError, match="disk full"):
        for f in frames(50):
            sink.write(f)
        sink.close()
    sink.close()
    assert Failing.closed


def probe(path) -> dict:
    """ffprobe's view of the first video stream: codec, pixel format, size."""
    import json

    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,pix_fmt,width,height", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"][0]


@needs_ffmpeg
@pytest.mark.parametrize("name", ["out.mp4", "out.mkv", "out.mov"])
def test_video_files_are_h264_yuv420p_with_even_sizes_that_browsers_play(tmp_path, name):
    sink = VideoFileSink(tmp_path / name, fps=10)
    for f in frames(12, size=(161, 121)):          # odd sizes: padded to even for yuv420p
        sink.write(f)
    sink.close()
    stream = probe(tmp_path / name)
    assert stream == {"codec_name": "h264", "pix_fmt": "yuv420p", "width": 162, "height": 122}
    assert count_frames(tmp_path / name)[0] == 12


@needs_ffmpeg
def test_without_libx264_the_file_is_mpeg4_with_a_warning(tmp_path, monkeypatch, caplog):
    import pipeline.video_file as video_file

    monkeypatch.setattr(video_file, "ffmpeg_has_encoder", lambda exe, name: False)
    sink = VideoFileSink(tmp_path / "out.mp4", fps=10)
    for f in frames(5):
        sink.write(f)
    sink.close()
    assert probe(tmp_path / "out.mp4")["codec_name"] == "mpeg4"
    assert count_frames(tmp_path / "out.mp4")[0] == 5
    assert "no libx264 encoder" in caplog.text


def test_ffmpeg_encoders_are_read_from_ffmpeg_itself():
    from pipeline.sink_base import ffmpeg_has_encoder

    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.skip("ffmpeg is not installed")
    listed = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    assert ffmpeg_has_encoder(exe, "mpeg4") and not ffmpeg_has_encoder(exe, "no_such_encoder")
    assert ffmpeg_has_encoder(exe, "libx264") == (" libx264 " in listed)


class Recorder:
    """A sink that keeps copies of the frames it gets (``live_view`` as given)."""

    def __init__(self, live_view):
        self.live_view, self.frames = live_view, []

    def write(self, frame):
        self.frames.append(frame.copy())
        return True

    def close(self):
        pass


@pytest.mark.parametrize("burn_fps", [False, True])
def test_the_fps_readout_is_only_in_the_live_window_unless_burned_in(burn_fps):
    from types import SimpleNamespace

    from pipeline.loop import run
    from pipeline.overlay import Overlay
    from pipeline.results import FrameResult
    from pipeline.source_base import Frame, Source

    class Black(Source):
        def __init__(self):
            super().__init__("black")
            self.fps, self.width, self.height, self.frame_count, self.i = 10.0, 320, 240, 10, 0

        def read(self):
            self.i += 1
            return Frame(np.zeros((240, 320, 3), np.uint8), self.i - 1, self.i / 10) if self.i <= 10 else None

    empty = np.zeros(0)
    pipe = SimpleNamespace(process=lambda image, index, timestamp, scene_cut=None: FrameResult(
        index, timestamp, empty.astype(np.int64), np.zeros((0, 4), np.float32), empty, [], empty, empty.astype(bool)))
    window, video = Recorder(True), Recorder(False)
    run(pipe, Black(), [window, video], overlay=Overlay(burn_fps=burn_fps))
    corner = (slice(0, 40), slice(0, 150))
    assert window.frames[-1][corner].any()                       # the readout, in the window
    assert video.frames[-1][corner].any() == burn_fps            # in the file only with --burn-fps
    assert not video.frames[-1][100:].any()                      # nothing else drawn


def test_the_window_sink_is_the_live_view():
    from pipeline.sinks import WindowSink

    assert WindowSink.live_view is True and VideoFileSink.live_view is False
