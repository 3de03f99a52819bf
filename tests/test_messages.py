"""What the user reads when something is missing: the offline weights error, a failed start, no camera,
display names (name.txt and the rename hint)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models import weights
from models.weights import WeightsError, resolve_weights, where_from

REPO = Path(__file__).resolve().parent.parent
#: A port on loopback nothing listens on: connecting is refused at once, as when offline.
CLOSED = "http://127.0.0.1:9"


def offline_env(tmp_path: Path, **extra) -> dict:
    """No display, no models folder, an empty cache, and every download through a proxy that refuses."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", weights.MODELS_DIR_ENV, "no_proxy", "NO_PROXY")}
    env.update(FACETRACK_CACHE_DIR=str(tmp_path / "cache"), https_proxy=CLOSED, http_proxy=CLOSED,
               HTTPS_PROXY=CLOSED, HTTP_PROXY=CLOSED)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def offline(tmp_path, monkeypatch):
    for key, value in offline_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    for key in (weights.MODELS_DIR_ENV, "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


@pytest.mark.parametrize("name", sorted(weights.REGISTRY) + sorted(weights.ROLES))
@pytest.mark.parametrize("allow_download", [True, False])
def test_the_offline_error_says_where_each_file_can_come_from_and_names_the_variable(offline, name,
                                                                                     allow_download):
    specs = [weights.REGISTRY[n] for n in weights.ROLES.get(name, (name,))]
    with pytest.raises(WeightsError) as info:
        resolve_weights(name, progress=False, allow_download=allow_download)
    message = str(info.value)
    assert weights.MODELS_DIR_ENV in message and str(offline / "cache") in message
    for spec in specs:
        assert where_from(spec) in message
        if spec.url:
            assert f"{spec.filename} has no public download" not in message
    assert "It has no public download" not in message
    if allow_download and any(s.url for s in specs):
        assert "Tried to download" in message and "failed" in message
    elif not allow_download:
        assert "Downloading is disabled" in message
    assert list((offline / "cache").glob("*")) == []


def test_models_info_says_what_the_error_says(offline, capsys):
    from models.__main__ import main

    assert main(["info", "--no-download"]) == 0
    out = capsys.readouterr().out
    for name, spec in weights.REGISTRY.items():
        line = next(row for row in out.splitlines() if row.split()[:1] == [name])
        assert line.endswith(f"not found locally; {where_from(spec)}"), line
    # The default detector and embedder lines, too: a run would download, so not "disabled".
    for label in ("detector", "embedder"):
        line = next(row for row in out.splitlines() if row.startswith(label + ":"))
        assert "not found locally; " in line and "disabled" not in line, line


def test_where_from_tells_a_download_from_a_local_only_file():
    assert where_from(weights.REGISTRY["edgeface_xs"]).endswith("has no public download "
                                                                "(copy it from a machine or folder that has it)")
    w600k = where_from(weights.REGISTRY["w600k_r50"])
    assert "buffalo_l.zip" in w600k and "extracted" in w600k


def test_the_camera_error_suggests_a_file_or_a_url():
    from pipeline.sources import SourceError, open_source

    with pytest.raises(SourceError) as info:
        open_source("9")
    message = str(info.value)
    assert "cannot open camera 9" in message
    assert "video file" in message and "folder of images" in message and "rtsp://" in message


def _tiny_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    return path


OUTPUTS = ("out.mp4", "events.jsonl", "tracks.txt", "names.csv")


def _run(command, out: Path, env, *extra):
    args = [str(a) for a in extra] + ["--output", out / "out.mp4", "--events", out / "events.jsonl",
                                      "--tracks", out / "tracks.txt", "--names", out / "names.csv",
                                      "--no-show", "--quiet"]
    return subprocess.run(command + [str(a) for a in args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.parametrize("command", [[sys.executable, "demo.py"], [sys.executable, "-m", "facetrack", "run"]],
                         ids=["demo.py", "facetrack run"])
def test_a_start_that_fails_on_the_weights_writes_no_output_file(tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    clip = _tiny_video(tmp_path / "clip.avi")
    env = offline_env(tmp_path)
    proc = _run(command, out, env, "--source", clip, "--models-dir", tmp_path / "no-models", "--device", "cpu")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: model weights"), proc.stderr
    assert weights.MODELS_DIR_ENV in lines[0]
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_wrong_output_folder_still_fails_before_the_models_load(tmp_path):
    clip = _tiny_video(tmp_path / "clip.avi")
    # No weights anywhere: reaching the models would give a weights error instead.
    proc = subprocess.run([sys.executable, "demo.py", "--source", str(clip), "--tracks", str(tmp_path / "x.txt"),
                           "--events", str(tmp_path / "no" / "e.jsonl"), "--no-show", "--quiet",
                           "--models-dir", str(tmp_path / "no-models")],
                          cwd=REPO, env=offline_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: cannot write events {tmp_path / 'no' / 'e.jsonl'}: "
                                   f"the folder {tmp_path / 'no'} does not exist")
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.integration
def test_a_start_that_fails_on_the_gallery_writes_no_output_file(tmp_path, shared_data, shared_models):
    out = tmp_path / "out"
    out.mkdir()
    env = offline_env(tmp_path, FACETRACK_MODELS_DIR=shared_models)
    proc = _run([sys.executable, "demo.py"], out, env, "--source", _tiny_video(tmp_path / "clip.avi"),
                "--gallery", tmp_path / "nobody", "--device", "cpu")
    assert proc.returncode == 2 and "--gallery: no such file or directory" in proc.stderr, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == []


# -- display names -----------------------------------------------------------------------
def test_name_txt_gives_the_display_name_and_is_not_a_photo(tmp_path):
    from gallery.enroll import scan_photo_dir

    for person in ("ada_lovelace", "grace_hopper"):
        (tmp_path / person).mkdir()
        (tmp_path / person / "1.jpg").write_bytes(b"x")
    (tmp_path / "ada_lovelace" / "name.txt").write_text("\n  Ada Lovelace  \nignored\n", encoding="utf-8")
    assert [(name, p.name) for name, p in scan_photo_dir(tmp_path, every_entry=True)] == [
        ("Ada Lovelace", "1.jpg"), ("grace_hopper", "1.jpg")]


@pytest.mark.parametrize("content, message", [
    (b"\n  \n", "is empty"),
    (b"a/b\n", "must not contain /"),
    (b"\xff\xfe\x00bad", "cannot read the display name"),
])
def test_an_unusable_name_txt_is_a_clear_error_naming_the_file(tmp_path, content, message):
    from gallery.enroll import scan_photo_dir

    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "name.txt").write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        scan_photo_dir(tmp_path)
    assert str(tmp_path / "ada" / "name.txt") in str(info.value)


@pytest.mark.parametrize("name, folder_like", [
    ("lin_manuel_miranda", True), ("madonna", True), ("Lin_Manuel", True),
    ("Lin-Manuel Miranda", False), ("Madonna", False), ("ada lovelace", False), ("李雷", False),
])
def test_which_names_look_like_folder_names(name, folder_like):
    from gallery.person_names import display_name_guess, looks_like_folder_name

    assert looks_like_folder_name(name) is folder_like
    assert display_name_guess("lin_manuel_miranda") == "Lin Manuel Miranda"


@pytest.mark.integration
def test_enroll_suggests_rename_for_folder_names_and_takes_name_txt(tmp_path, shared_data, shared_models):
    photos = tmp_path / "photos"
    for person in ("barack_obama", "lin_manuel_miranda"):
        shutil.copytree(shared_data / "gallery" / person, photos / person)
    (photos / "barack_obama" / "name.txt").write_text("Barack Obama\n")
    db = tmp_path / "g.db"
    env = offline_env(tmp_path, FACETRACK_MODELS_DIR=shared_models)
    run = [sys.executable, "-m", "facetrack"]
    proc = subprocess.run(run + ["enroll", str(photos), "--db", str(db), "--device", "cpu", "--quiet"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "name.txt" not in proc.stdout            # not listed as a skipped photo
    hint = [line for line in proc.stderr.splitlines() if line.startswith("hint:")]
    assert len(hint) == 1 and "1 of 2 names look like folder names (lin_manuel_miranda)" in hint[0], proc.stderr
    assert f'facetrack rename lin_manuel_miranda "Lin Manuel Miranda" --db {db}' in hint[0]
    listed = subprocess.run(run + ["list", "--db", str(db)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "Barack Obama" in listed.stdout and "barack_obama" not in listed.stdout
    # The hint's command, run as written, leaves no folder-like name and so no hint.
    renamed = subprocess.run(run + ["rename", "lin_manuel_miranda", "Lin-Manuel Miranda", "--db", str(db)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert renamed.returncode == 0, renamed.stderr
    again = subprocess.run(run + ["enroll", str(photos), "--db", str(db), "--device", "cpu", "--quiet"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and "hint:" not in again.stderr, again.stderr
