"""evaluation.degrade: a sequence folder copied with a softer, more compressed video (real ffmpeg)."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from evaluation import gt as gtio
from evaluation.degrade import degrade
from evaluation.replay import folder_gallery

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def _sequence(folder, frames=12):
    (folder / "gt").mkdir(parents=True)
    (folder / gtio.GT_FILE).write_text("1,1,10,10,40,40,1,1,1\n")
    gtio.write_cuts(folder / gtio.CUTS_FILE, [1])
    (folder / "gallery" / "someone").mkdir(parents=True)
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(folder / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 96))
    for _ in range(frames):
        writer.write(np.kron(rng.integers(0, 2, (12, 20, 1), dtype=np.uint8) * 255, np.ones((8, 8, 3), np.uint8)))
    writer.release()


def _frames(path):
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def test_the_copy_keeps_frames_and_ground_truth_and_is_softer(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _sequence(src)
    video = degrade(src, dst, blur_sigma=1.5, bitrate="100k")
    a, b = _frames(src / "video.mp4"), _frames(video)
    assert len(a) == len(b) == 12
    assert (dst / gtio.GT_FILE).read_text() == (src / gtio.GT_FILE).read_text()
    assert (dst / gtio.CUTS_FILE).exists() and (dst / "gallery" / "someone").is_dir()
    sharp = lambda f: cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    assert sharp(b[5]) < 0.5 * sharp(a[5])


def test_bad_folders_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a sequence folder"):
        degrade(tmp_path, tmp_path / "out")
    _sequence(tmp_path / "src")
    with pytest.raises(ValueError, match="folder of its own"):
        degrade(tmp_path / "src", tmp_path / "src")
    with pytest.raises(ValueError, match="blur_sigma"):
        degrade(tmp_path / "src", tmp_path / "out", blur_sigma=-1)


def test_a_folders_gallery_is_its_own_people_and_the_shared_ones(tmp_path):
    shared = tmp_path / "shared"
    (shared / "alice").mkdir(parents=True)
    seq = tmp_path / "seq"
    (seq / "gallery" / "speaker").mkdir(parents=True)
    merged = folder_gallery(seq, shared, tmp_path / "cache")
    assert sorted(p.name for p in merged.iterdir()) == ["alice", "speaker"]
    assert sorted(p.name for p in folder_gallery(shared, shared, tmp_path / "c2").iterdir()) == ["alice"]
    (seq / "gallery" / "alice").mkdir()
    with pytest.raises(ValueError, match="name of a person"):
        folder_gallery(seq, shared, tmp_path / "cache3")
