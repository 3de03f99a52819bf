"""Bad inputs that must give one clear line: damaged weights, damaged and truncated sources.

Each weights case goes through the real loaders (ultralytics, onnx, onnxruntime) and the real command
lines in subprocesses; the truncated real checkpoint needs ``../shared`` (integration).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def one_error_line(proc, *words):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def bad_weights(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "text.pt": b"this is not a checkpoint\n",
        "text.onnx": b"this is not a model\n",
        "empty.pt": b"",
        "truncated.pt": b"PK\x03\x04" + bytes(range(256)) * 40,       # a zip that stops early
        "garbage.onnx": bytes(range(256)) * 40,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


WHAT = {"text.pt": "text file", "text.onnx": "text file", "empty.pt": "empty", "truncated.pt": "truncated",
        "garbage.onnx": "not a valid ONNX model"}


@pytest.mark.parametrize("name", sorted(WHAT))
def test_a_damaged_detector_file_is_a_weights_error_naming_it(tmp_path, name):
    from models.detector import FaceDetector
    from models.weights import WeightsFileError

    path = bad_weights(tmp_path)[name]
    with pytest.raises(WeightsFileError) as info:
        FaceDetector(path, device="cpu")
    assert str(path) in str(info.value) and WHAT[name] in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["text.onnx", "garbage.onnx", "text.pt"])
def test_a_damaged_embedder_file_is_one_sentence_naming_it(tmp_path, name):
    from models.embedder import FaceEmbedder, WrongModelError

    path = bad_weights(tmp_path)[name]
    with pytest.raises(WrongModelError) as info:
        FaceEmbedder(path, device="cpu")
    assert str(path) in str(info.value) and WHAT[name] in str(info.value)


@pytest.mark.parametrize("name", ["text.pt", "text.onnx", "truncated.pt"])
def test_gallery_enroll_with_damaged_detector_weights_is_one_error_line(tmp_path, name):
    path = bad_weights(tmp_path / "w")[name]
    (tmp_path / "photos" / "ada").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "gallery", "enroll", str(tmp_path / "photos"), "--db",
                           str(tmp_path / "g.db"), "--detector", str(path), "--device", "cpu", "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    one_error_line(proc, str(path), WHAT[name])


def write_clip(path: Path, frames: int = 10) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (i * 10) % 256, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("name", ["text.pt", "text.onnx", "truncated.pt"])
def test_the_demo_with_damaged_detector_weights_in_its_config_is_one_error_line(tmp_path, name):
    path = bad_weights(tmp_path / "w")[name]
    config = tmp_path / "c.yaml"
    config.write_text(f"detector:\n  weights: {path}\n")
    clip = write_clip(tmp_path / "clip.avi")
    proc = subprocess.run([sys.executable, str(REPO / "demo.py"), "--source", str(clip), "--config", str(config),
                           "--no-show", "--quiet", "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    one_error_line(proc, str(path), WHAT[name])


@pytest.mark.integration
@pytest.mark.parametrize("cut", [0.5, 0.05])
def test_a_truncated_real_checkpoint_is_one_error_line(tmp_path, detector_weights, cut):
    data = detector_weights.read_bytes()
    path = tmp_path / "yolov8n-face.pt"
    path.write_bytes(data[: int(len(data) * cut)])
    from models.detector import FaceDetector
    from models.weights import WeightsFileError

    with pytest.raises(WeightsFileError, match="truncated or damaged"):
        FaceDetector(path, device="cpu")


# -- sources -----------------------------------------------------------------------------------------
def test_an_image_folder_whose_first_file_is_unreadable_skips_it(tmp_path):
    from pipeline.sources import SourceError, open_source

    (tmp_path / "a.jpg").write_text("not an image")
    for i in (1, 2):
        cv2.imwrite(str(tmp_path / f"b{i}.png"), np.full((20, 30, 3), 50 * i, np.uint8))
    with open_source(str(tmp_path)) as source:
        frames = list(source)
    assert (source.width, source.height) == (30, 20)
    assert [f.index for f in frames] == [1, 2]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_text("no")
    with pytest.raises(SourceError, match="none of the 1 images can be read"):
        open_source(str(bad))


def test_a_truncated_video_ends_with_a_warning_in_the_summary(tmp_path):
    from pipeline.loop import run
    from pipeline.sources import open_source
    from fault_run import ScriptedPipeline

    clip = write_clip(tmp_path / "clip.avi", frames=100)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    source = open_source(str(clip))
    summary = run(ScriptedPipeline(), source)
    assert 10 < summary.frames < 90
    assert "ended after" in summary.source_warning and "of the 100 frames" in summary.source_warning
    whole = open_source(str(write_clip(tmp_path / "whole.avi", frames=30)))
    assert run(ScriptedPipeline(), whole).source_warning == ""
