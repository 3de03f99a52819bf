"""``python -m models``: every error path exits non-zero with one clear message and no traceback.

Cases run on fake models built in the tests (no weights needed); the last one uses ../shared. The error
paths that fail before any model loads run as real subprocesses (``python -m models``); the ones that load
ultralytics run ``models.__main__.main`` in-process (each subprocess would re-import torch, ~5 s here), plus
one subprocess that goes through model loading end to end.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from test_models_detector import fake_yolo
from test_models_embedder import tiny_recognizer

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACETRACK_")}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-m", "models", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``main(argv)`` in-process; returns (exit code, stdout, stderr)."""
    from models.__main__ import main

    def run(*args, env_extra=None):
        for key in [k for k in os.environ if k.startswith("FACETRACK_")]:
            monkeypatch.delenv(key)
        for key, value in (env_extra or {}).items():
            monkeypatch.setenv(key, value)
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    img = root / "photo ü.png"
    cv2.imencode(".png", image)[1].tofile(str(img))
    return {
        "root": root,
        "image": img,
        "detector": fake_yolo(root / "fake_pose.onnx"),
        "empty_detector": fake_yolo(root / "fake_none.onnx", boxes=((320, 320, 100, 80, 0.1),)),
        "embedder": tiny_recognizer(root / "tiny_arcface.onnx"),
        "cache": {"FACETRACK_CACHE_DIR": str(root / "cache")},
    }


def test_check_install():
    proc = run_cli("check-install")
    assert proc.returncode == 0 and "onnxruntime-gpu" in proc.stdout and "CPUExecutionProvider" in proc.stdout


def test_detect_json_and_text(cli, fakes):
    code, out, err = cli("detect", fakes["image"], "--detector", fakes["detector"], "--device", "cpu", "--json",
                         env_extra=fakes["cache"])
    assert code == 0, err
    out = json.loads(out)
    assert len(out["faces"]) == 1 and len(out["faces"][0]["landmarks"]) == 5
    assert out["faces"][0]["box_xyxy"] == pytest.approx([270, 200, 370, 280], abs=0.1)  # 80 px letterbox padding
    code, out, err = cli("detect", fakes["image"], "--detector", fakes["detector"], env_extra=fakes["cache"])
    assert code == 0 and "1 face(s)" in out


def test_compare_prints_the_number_last(cli, fakes):
    code, out, err = cli("compare", fakes["image"], fakes["image"], "--detector", fakes["detector"],
                         "--embedder", fakes["embedder"], env_extra=fakes["cache"])
    assert code == 0, err
    assert float(out.strip().splitlines()[-1]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("command", ["detect", "compare"])
def test_unreadable_image(fakes, command):
    junk = fakes["root"] / "junk.jpg"
    junk.write_bytes(b"not an image")
    extra = [fakes["image"]] if command == "compare" else []
    for bad in (junk, fakes["root"] / "absent.jpg"):
        proc = run_cli(command, bad, *extra, "--detector", fakes["detector"], env_extra=fakes["cache"])
        assert proc.returncode == 1
        assert "error: cannot read image" in proc.stderr and str(bad.name) in proc.stderr


def test_no_face(cli, fakes):
    # End to end in a subprocess: loads the (fake) model through ultralytics.
    proc = run_cli("detect", fakes["image"], "--detector", fakes["empty_detector"], env_extra=fakes["cache"])
    assert proc.returncode == 1 and "no face found" in proc.stderr
    code, out, err = cli("compare", fakes["image"], fakes["image"], "--detector", fakes["empty_detector"],
                               "--embedder", fakes["embedder"], env_extra=fakes["cache"])
    assert code == 1 and "error: no face found" in err


def test_missing_weights(fakes):
    empty = fakes["root"] / "empty_models"
    empty.mkdir(exist_ok=True)
    proc = run_cli("detect", fakes["image"], "--detector", "yolov8n-face", "--no-download", "--models-dir", empty,
                   env_extra=fakes["cache"])
    assert proc.returncode == 1
    assert "yolov8n-face.pt" in proc.stderr and str(empty) in proc.stderr and "FACETRACK_MODELS_DIR" in proc.stderr
    proc = run_cli("compare", fakes["image"], fakes["image"], "--detector", fakes["detector"],
                   "--embedder", "edgeface_xs", "--models-dir", empty, env_extra=fakes["cache"])
    assert proc.returncode == 1 and "edgeface_xs.onnx" in proc.stderr and "no public download" in proc.stderr


def test_wrong_models(cli, fakes):
    # An embedder file given as the detector, and a detector file given as the embedder.
    code, out, err = cli("detect", fakes["image"], "--detector", fakes["embedder"], env_extra=fakes["cache"])
    assert code == 1 and "error:" in err and "task" in err
    code, out, err = cli("compare", fakes["image"], fakes["image"], "--detector", fakes["detector"],
                         "--embedder", fakes["detector"], env_extra=fakes["cache"])
    assert code == 1 and "ArcFace-style" in err


def test_bad_device_and_usage(cli, fakes):
    code, out, err = cli("detect", fakes["image"], "--detector", fakes["detector"], "--device", "cuda:7",
                               env_extra=fakes["cache"])
    assert code == 1 and "cuda:7" in err
    proc = run_cli("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_info_lists_registry(cli, fakes):
    code, out, err = cli("info", "--models-dir", fakes["root"], env_extra=fakes["cache"])
    assert code == 0
    for name in ("yolov8n-face", "edgeface_xs", "w600k_r50", "arcface", "CPUExecutionProvider"):
        assert name in out


def test_bench_runs_quickly_on_fakes(cli, fakes):
    code, out, err = cli("bench", "--detector", fakes["detector"], "--embedder", fakes["embedder"], "--repeats", "3",
                   "--batch-sizes", "1", "4", "--json", env_extra=fakes["cache"])
    assert code == 0, err
    tail = out[out.index("{"):]
    timings = json.loads(tail)
    assert set(timings) == {"detector_640", "embedder_batch_1", "embedder_batch_4"}
    assert all(t["median_ms"] > 0 for t in timings.values())


@pytest.mark.integration
def test_real_detect_and_compare(shared_models):
    verify = shared_models / "verify"
    env = {"FACETRACK_MODELS_DIR": str(shared_models)}
    proc = run_cli("detect", verify / "deepface_selfie-many-people.jpg", "--json", env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["faces"]) == 7
    proc = run_cli("compare", verify / "deepface_img1.jpg", verify / "deepface_img2.jpg", env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.strip().splitlines()[-1]) > 0.4  # same person (master.csv)
