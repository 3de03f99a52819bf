"""``demo.py --source IMAGE|FOLDER``: named per image without tracking; ``--output`` takes images and folders.

The bad-input tests load no model; the others run demo.py as a user would, with the real weights on ../shared.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetrack.demo_cli import EXIT_BAD_INPUT, main

REPO = Path(__file__).resolve().parent.parent
PEOPLE = ("barack_obama", "joe_biden")
TWO_PEOPLE = ("probe", "_group", "fr_two_people.jpg")
STRANGER = ("probe", "_unknown", "dlib_Tom_Cruise_avp_2014_4.jpg")


@pytest.fixture
def no_models(monkeypatch):
    import facetrack.build

    def refuse(*a, **k):
        raise AssertionError("the models were loaded before the bad input was refused")
    monkeypatch.setattr(facetrack.build, "build_models", refuse)


@pytest.fixture
def photos(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((40, 50, 3), 90, np.uint8))
    (tmp_path / "sub").mkdir()
    return folder


@pytest.mark.parametrize("argv, message", [
    (["--source", "{img}", "--output", "{tmp}/out.mp4"], "an image source is written as an image"),
    (["--source", "{img}", "--output", "{tmp}/nowhere/out.png"], "does not exist"),
    (["--source", "{img}", "--output", "{img}"], "not to the source itself"),
    (["--source", "{img}", "--output", "rtmp://127.0.0.1/live/x"], "not to a stream"),
    (["--source", "{folder}", "--output", "{tmp}/out.png"], "a folder of images is written to a folder"),
    (["--source", "{folder}", "--output", "{folder}"], "not to the source itself"),
    (["--source", "{img}", "--events", "{tmp}/e.jsonl"], "--events describes tracks over time"),
    (["--source", "{folder}", "--tracks", "{tmp}/t.txt"], "--tracks describes tracks over time"),
    (["--source", "{tmp}/sub"], "no images"),
])
def test_bad_outputs_for_an_image_source_are_refused_before_the_models_load(photos, no_models, capsys, argv,
                                                                            message):
    tmp = photos.parent
    argv = [a.format(img=photos / "a.png", folder=photos, tmp=tmp) for a in argv] + ["--no-show", "--quiet"]
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp.iterdir()) == ["photos", "sub"]       # nothing written


def demo(*args, env):
    return subprocess.run([sys.executable, str(REPO / "demo.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)


@pytest.fixture(scope="module")
def env(shared_models):
    return {**os.environ, "FACETRACK_MODELS_DIR": str(shared_models), "QT_QPA_PLATFORM": "offscreen"}


@pytest.mark.integration
def test_one_photo_is_named_and_written_as_an_annotated_png_then_a_folder_to_a_folder(shared_data, env, tmp_path):
    from models.io import read_image

    gallery = tmp_path / "gallery"
    for person in PEOPLE:
        shutil.copytree(shared_data / "gallery" / person, gallery / person)
    photo = shared_data.joinpath(*TWO_PEOPLE)
    out = tmp_path / "named.png"
    proc = demo("--source", photo, "--gallery", gallery, "--gallery-db", tmp_path / "g.db", "--output", out,
                "--no-show", "--quiet", "--device", "cpu", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith(str(photo))]
    assert sorted(r[3] for r in rows) == list(PEOPLE), proc.stdout           # "0 tracks" no more
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and f"wrote {out}" in proc.stderr
    drawn, original = read_image(out), read_image(photo)
    assert drawn.shape == original.shape and not np.array_equal(drawn, original)

    folder = tmp_path / "unrelated"
    folder.mkdir()
    shutil.copy(photo, folder / "1.jpg")
    shutil.copy(shared_data.joinpath(*STRANGER), folder / "2.jpg")
    (folder / "3.jpg").write_bytes(b"broken")
    named = tmp_path / "named"
    proc = demo("--source", folder, "--gallery", tmp_path / "g.db", "--output", named, "--no-show", "--quiet",
                "--device", "cpu", env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in named.iterdir()) == ["1.jpg", "2.jpg"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in named.iterdir())
    assert "skipped" in proc.stderr and "3.jpg" in proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted(line.split()[3] for line in lines if "1.jpg" in line) == list(PEOPLE)
    assert [line.split()[3] for line in lines if "2.jpg" in line] == ["Unknown"]
    assert lines[-1].startswith("2 images, 3 faces, 2 named")
