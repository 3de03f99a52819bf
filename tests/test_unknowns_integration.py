"""Persistent Unknowns end to end through demo.py on real video: the same unenrolled person in two runs on two
different clips gets the same ``Unknown #id`` (overlay label and events), another person another id, and naming
the cluster with ``python -m gallery unknowns name`` makes the next run show the name."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gallery.store import GalleryStore, file_mode
from gallery.unknowns import UnknownGallery

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")]


def cut(src: Path, out: Path, first: int, last: int, size: int) -> Path:
    """Frames ``first..last`` of ``src`` re-encoded at ``size`` x ``size``: another clip of the same person."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf",
                    f"select='between(n,{first},{last})',setpts=N/25/TB,scale={size}:{size}", "-r", "25", "-an",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True, timeout=120)
    return out


def run_demo(tmp: Path, clip: Path, gallery, events: Path, models: Path, *extra) -> subprocess.CompletedProcess:
    env = {"FACETRACK_MODELS_DIR": str(models), "PATH": "/usr/bin:/bin", "HOME": str(tmp),
           "XDG_CACHE_HOME": str(tmp / "cache")}
    proc = subprocess.run([sys.executable, str(REPO / "demo.py"), "--source", str(clip), *map(str, gallery),
                           "--events", str(events), "--config", str(tmp / "fast.yaml"), "--no-show", "--quiet",
                           "--device", "cpu", *map(str, extra)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr
    return proc


def names_in(events: Path) -> list:
    """The names of the appearances (their ``ended`` events; ``appeared`` ones carry the name at the start)."""
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    return [r["name"] for r in rows if r.get("event", "ended") == "ended"]


def unknowns(db: Path, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "gallery", "unknowns", "--db", str(db), *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_same_unenrolled_person_gets_the_same_unknown_id_and_a_name_once_named(tmp_path, shared_data,
                                                                                  shared_models):
    heads = shared_data / "video" / "talking_heads"
    woman, other = heads / "video_retalking_4.mp4", heads / "video_retalking_5.mp4"
    clip_a = cut(woman, tmp_path / "a.mp4", 0, 39, 700)          # two clips of the same person: other frames,
    clip_b = cut(woman, tmp_path / "b.mp4", 150, 189, 560)       # another size, another file
    clip_c = cut(other, tmp_path / "c.mp4", 0, 39, 524)          # somebody else, also not enrolled
    config = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    config["detector"]["input_size"] = 320                       # big faces: a smaller input is enough (2 CPUs)
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump(config))
    photos = tmp_path / "photos"                                 # a gallery of two people, neither of them
    for person in ("barack_obama", "katy_perry"):
        shutil.copytree(shared_data / "gallery" / person, photos / person)
    db = tmp_path / "gallery.db"

    run_demo(tmp_path, clip_a, ["--gallery", photos, "--gallery-db", db], tmp_path / "a.jsonl", shared_models)
    assert names_in(tmp_path / "a.jsonl") == [None]              # first sighting: nobody to match yet
    with GalleryStore(db) as store:
        (cluster,) = UnknownGallery(store).clusters()
        assert cluster.appearances == 1 and UnknownGallery(store).thumbnails(cluster.cluster_id)
    label = f"Unknown #{cluster.cluster_id}"

    run_demo(tmp_path, clip_b, ["--gallery", db], tmp_path / "b.jsonl", shared_models)
    assert names_in(tmp_path / "b.jsonl") == [label]             # the same person, the same id
    run_demo(tmp_path, clip_c, ["--gallery", db], tmp_path / "c.jsonl", shared_models)
    assert names_in(tmp_path / "c.jsonl") == [None]              # someone else is not #id
    listing = unknowns(db, "list", "--sheet", tmp_path / "sheet.jpg").stdout
    assert f"{label}     2 appearances" in listing and str(clip_a) in listing and str(clip_b) in listing
    assert len(listing.strip().splitlines()) == 2 and file_mode(tmp_path / "sheet.jpg") == 0o600

    unknowns(db, "name", cluster.cluster_id, "Ada Lovelace")
    run_demo(tmp_path, clip_b, ["--gallery", db], tmp_path / "named.jsonl", shared_models, "--no-remember-unknowns")
    assert names_in(tmp_path / "named.jsonl") == ["Ada Lovelace"]
    with GalleryStore(db) as store:
        u = UnknownGallery(store)
        assert len(u.clusters()) == 1 and u.appearances(named=True) == []   # --no-remember-unknowns: nothing new
        assert "Ada Lovelace" in [p.name for p in store.people()]


def test_calibrate_reports_the_join_threshold_from_track_like_means_of_real_video(tmp_path, shared_data,
                                                                                shared_models):
    heads = shared_data / "video" / "talking_heads"
    clips = [cut(heads / name, tmp_path / f"{k}.mp4", 0, 29, 352)
             for k, name in enumerate(("video_retalking_4.mp4", "video_retalking_5.mp4"))]
    proc = subprocess.run([sys.executable, "-m", "gallery", "unknowns", "calibrate", *map(str, clips),
                           "--segment", "10", "--models-dir", str(shared_models)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "6 means of 10 frames from 2 videos" in proc.stdout
    assert "ROC AUC: 1.0000" in proc.stdout and "decision stump" in proc.stdout
