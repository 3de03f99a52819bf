"""The live bench: its figures from known times, and a real ffmpeg-served stream through the real pipeline."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from evaluation.live_bench import LocalStream, encode_at, format_live, live_figures

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CLIP = SHARED / "data" / "video" / "short_hamilton_clip.mp4"


def test_live_figures_from_known_times():
    capture = [float(t) for t in range(100)]
    written = [t + 0.010 * (1 + (i % 10)) for i, t in enumerate(capture)]   # 10 .. 100 ms
    f = live_figures(capture, written, processed=100, dropped=25, seconds=10.0)
    assert f["frames_captured"] == 125 and f["drop_rate"] == pytest.approx(0.2)
    assert f["processed_fps"] == pytest.approx(10.0) and f["captured_fps"] == pytest.approx(12.5)
    assert f["latency_ms_p50"] == pytest.approx(55.0)
    assert f["latency_ms_p99"] == pytest.approx(100.0, abs=0.5) and f["latency_ms_max"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="no frame"):
        live_figures([], [], processed=0, dropped=3, seconds=1.0)


@pytest.mark.skipif(shutil.which("ffmpeg") is None or not CLIP.exists() or not (SHARED / "models").is_dir(),
                    reason="needs ffmpeg and ../shared")
def test_a_real_stream_served_by_ffmpeg_gives_sane_latency_and_drops(tmp_path, monkeypatch):
    from evaluation.bench import build_parts, load_settings
    from evaluation.live_bench import run_live

    monkeypatch.setenv("FACETRACK_MODELS_DIR", os.environ.get("FACETRACK_MODELS_DIR", str(SHARED / "models")))
    parts = build_parts(None, None, SHARED / "data" / "gallery", config=load_settings(), work_dir=tmp_path)
    results = run_live(CLIP, parts, fps_list=[24], seconds=4.0, modes=("overlapped",), work_dir=tmp_path)
    (r,) = results
    assert r["size"] == "640x360" and r["stream_fps"] == pytest.approx(24.0, abs=0.5)
    assert r["frames_processed"] >= 5 and 0.0 <= r["drop_rate"] <= 1.0
    assert 0 < r["latency_ms_p50"] <= r["latency_ms_p95"] <= r["latency_ms_p99"] <= r["latency_ms_max"]
    assert r["latency_ms_p50"] < 4000                    # newest-frame policy: not seconds behind
    assert r["captured_fps"] == pytest.approx(24.0, rel=0.35)   # the stream really came at its rate
    assert r["processed_fps"] > 0
    assert "| 24 fps 640x360 | overlapped |" in format_live(results)


@pytest.mark.skipif(shutil.which("ffmpeg") is None or not CLIP.exists(), reason="needs ffmpeg and ../shared")
def test_the_local_stream_is_a_live_source_at_the_encoded_rate(tmp_path):
    from pipeline.sources import open_source

    encoded = encode_at(CLIP, 30, tmp_path / "s.mp4")
    with LocalStream(encoded) as stream:
        assert stream.url.startswith("udp://127.0.0.1:")
        source = open_source(stream.url)
        try:
            assert source.is_live and source.fps == pytest.approx(30.0, abs=0.5)
            frame = source.read()
            assert frame.image.shape == (360, 640, 3) and frame.timestamp >= 0
            assert source.clock_origin + frame.timestamp <= __import__("time").monotonic()
        finally:
            source.close()
