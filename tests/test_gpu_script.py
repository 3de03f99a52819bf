"""scripts/gpu_check.py: on this CPU-only machine it prints the "no CUDA device" line, runs the CPU smoke of the
same code path (embedder, fp16-or-not detector, single stream, streams batched across the detector) and ends
with a JSON summary whose figures come from that run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gpu_check.py"

pytestmark = pytest.mark.integration


def _run(*args, models_dir: Path, timeout: float = 300):
    env = dict(os.environ, FACETRACK_MODELS_DIR=str(models_dir))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(REPO_ROOT))


def _summary(stdout: str) -> dict:
    head, sep, tail = stdout.partition("JSON summary:\n")
    assert sep, f"no JSON summary in the output:\n{stdout[-2000:]}"
    return json.loads(tail)


@pytest.mark.slow
def test_the_cpu_smoke_says_no_cuda_and_measures_the_same_code_path(shared_models, shared_data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: this test covers the CPU smoke")
    video = shared_data / "video" / "facenet_pytorch_pedestrians.mp4"
    out = tmp_path / "summary.json"
    proc = _run(video, "--json-out", out, models_dir=shared_models)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = proc.stdout.splitlines()[0]
    assert first.startswith("no CUDA device"), first
    summary = _summary(proc.stdout)
    assert summary == json.loads(out.read_text())
    assert summary["cuda"] is False
    assert summary["video"] == {"path": str(video), "width": 1920, "height": 1080}
    assert summary["embedder"]["session_providers"] == ["CPUExecutionProvider"]
    assert summary["embedder"]["cuda_execution_provider"] is False
    assert summary["detector"]["device"] == "cpu" and summary["detector"]["half"] is False
    assert summary["detector"]["param_dtype"] == "float32"
    assert summary["detector"]["faces_on_first_frame"] >= 3     # the crowd video's first frame has several faces
    assert summary["tensorrt"] == {"skipped": "no CUDA device"}
    single = summary["single_stream"]
    assert single["frames"] == 4 and single["fps"] > 0 and single["tracked_faces"] > 0
    assert single["latency"]["p50_ms"] <= single["latency"]["p99_ms"]
    (multi,) = summary["multi_stream"]
    assert multi["streams"] == 2 and multi["steps"] == 4
    assert multi["detected_faces"] >= 2 * 4 * 3    # every stream's frames went through the batched detector
    assert multi["aggregate_fps"] == pytest.approx(2 * multi["per_stream_fps"], rel=0.05)


def test_a_missing_video_is_one_clear_error(shared_models, tmp_path):
    proc = _run(tmp_path / "nothing.mp4", models_dir=shared_models, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: no such video: {tmp_path / 'nothing.mp4'}"


def test_missing_weights_are_one_error_and_nothing_is_downloaded(shared_data, tmp_path):
    empty, cache = tmp_path / "models", tmp_path / "cache"
    empty.mkdir()
    env = dict(os.environ, FACETRACK_MODELS_DIR=str(empty), FACETRACK_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, str(SCRIPT), str(shared_data / "video" / "short_hamilton_clip.mp4")],
                          capture_output=True, text=True, env=env, timeout=120, cwd=str(REPO_ROOT))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and "yolov8n-face" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not cache.exists() or not any(cache.iterdir())
