"""Fault injection on galleries: a damaged page, a lock held by another process, a full disk,
interrupted enrollment, file modes, odd entries in a photo folder and odd names.

Real SQLite files, real second processes holding locks, a real small tmpfs
(skipped with the reason where it cannot be mounted) and the real command
line in subprocesses; the models are the fakes of ``test_gallery_fakes`` (no
weights needed). The demo on a damaged gallery, with the real models, is in
``test_reliability.py``.
"""
from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gallery.enroll import ENROLLED, SKIPPED, UNCHANGED, Enroller
from gallery.store import GalleryCorruptError, GalleryError, GalleryStore, file_mode
from test_gallery_fakes import DIM, FakeDetector, FakeEmbedder, FakeIdentity, fake_quality, fake_reader, write_photo
from test_reliability import small_fs  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parent.parent
GALLERY = [sys.executable, "-m", "gallery"]


def gallery_cli(*args, timeout=60):
    return subprocess.run(GALLERY + [str(a) for a in args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def one_error_line(proc, *words):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def make_gallery(path, people=8, per_person=40):
    rng = np.random.default_rng(0)
    with GalleryStore(path, FakeIdentity()) as store, store.write() as w:
        for p in range(people):
            for k in range(per_person):
                w.add_embedding(f"person_{p}", rng.standard_normal(DIM), source_path=f"/photos/{p}/{k}.jpg",
                                source_sha256=f"{p:04d}{k:060d}")
    return path


def zero_page(path, page):
    size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\0" * size)


# -- a damaged page ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["list"], ["rename", "person_1", "someone"], ["remove", "person_1"]])
def test_a_gallery_with_a_zeroed_page_is_one_error_with_the_integrity_check(tmp_path, command):
    db = make_gallery(tmp_path / "g.db")
    zero_page(db, 20)
    proc = gallery_cli(*command, "--db", db)
    one_error_line(proc, str(db), "damaged", "integrity_check", "restore it from a backup")


def test_the_store_refuses_a_damaged_gallery_on_open_as_the_demo_uses_it(tmp_path):
    db = make_gallery(tmp_path / "g.db")
    zero_page(db, 20)
    with pytest.raises(GalleryCorruptError, match="integrity_check"):
        GalleryStore(db, FakeIdentity(), create=False)


# -- a lock held by another process ------------------------------------------------------------
HOLD_LOCK = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")
"""


def hold_lock(db, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize("command", [["list"], ["rename", "person_1", "someone"]])
def test_a_gallery_locked_too_long_is_a_warning_then_one_clear_error(tmp_path, command):
    db = make_gallery(tmp_path / "g.db", people=2, per_person=2)
    holder = hold_lock(db, 30)
    try:
        t0 = time.monotonic()
        proc = gallery_cli(*command, "--db", db, "--lock-timeout", "2.5")
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    one_error_line(proc, str(db), "locked by another process")
    assert "waiting up to" in proc.stderr
    assert 2.0 < waited < 20


def test_a_lock_released_in_time_is_waited_for(tmp_path):
    db = make_gallery(tmp_path / "g.db", people=2, per_person=2)
    holder = hold_lock(db, 6)
    try:
        proc = gallery_cli("rename", "person_1", "someone", "--db", db, "--lock-timeout", "30")
    finally:
        holder.wait()
    assert proc.returncode == 0, proc.stderr
    assert "locked by another process; waiting" in proc.stderr
    with GalleryStore(db, create=False) as store:
        assert [p.name for p in store.people()] == ["person_0", "someone"]


# -- a full disk ----------------------------------------------------------------------------------
def test_a_full_disk_during_a_write_names_the_real_cause_and_keeps_the_gallery(small_fs):  # noqa: F811
    db = small_fs / "g.db"
    rng = np.random.default_rng(1)
    committed = 0
    with GalleryStore(db, FakeIdentity()) as store:
        with pytest.raises(GalleryError) as info:
            for batch in range(1000):
                with store.write() as w:
                    for k in range(10):
                        w.add_embedding("ada", rng.standard_normal(DIM), source_path=f"/p/{batch}/{k}.jpg")
                committed += 10
    message = str(info.value)
    assert "disk is full" in message and "cannot rollback" not in message
    assert committed > 0
    with GalleryStore(db, create=False) as store:
        assert len(store) == committed and store.integrity_ok()


# -- interrupted enrollment resumes -------------------------------------------------------------
class InterruptingReader:
    """The fake photo reader, with Ctrl-C on the ``n``-th photo read."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, path):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return fake_reader(path)


def test_an_interrupted_enrollment_keeps_its_finished_batches_and_resumes(tmp_path):
    root = tmp_path / "photos"
    for i in range(10):
        write_photo(root / f"p{i}" / "1.jpg", (f"p{i}", 100, 0.05))
    db = tmp_path / "g.db"
    reader = InterruptingReader(8)
    with GalleryStore(db, FakeIdentity()) as store:
        enroller = Enroller(FakeDetector(), FakeEmbedder(), image_reader=reader, quality_fn=fake_quality,
                            commit_every=3)
        with pytest.raises(KeyboardInterrupt):
            enroller.enroll_folder(root, store, progress=False)
        assert len(store) == 6                                   # two batches of three
    embedder = FakeEmbedder()
    with GalleryStore(db, FakeIdentity()) as store:
        report = Enroller(FakeDetector(), embedder, image_reader=fake_reader, quality_fn=fake_quality,
                          commit_every=3).enroll_folder(root, store, progress=False)
        assert report.counts() == {UNCHANGED: 6, ENROLLED: 4}
        assert embedder.calls == 4 and len(store) == 10 and store.integrity_ok()


def test_a_changed_photo_is_replaced_within_one_batch(tmp_path):
    root = tmp_path / "photos"
    for i in range(4):
        write_photo(root / f"p{i}" / "1.jpg", (f"p{i}", 100, 0.05))
    db = tmp_path / "g.db"
    enroller = Enroller(FakeDetector(), FakeEmbedder(), image_reader=fake_reader, quality_fn=fake_quality,
                        commit_every=1)
    with GalleryStore(db, FakeIdentity()) as store:
        enroller.enroll_folder(root, store, progress=False)
        write_photo(root / "p2" / "1.jpg", ("p2", 120, 0.05))
        seen = []
        original = type(store).write

        def spying_write(self):
            seen.append(len(self))
            return original(self)

        type(store).write = spying_write
        try:
            enroller.enroll_folder(root, store, progress=False)
        finally:
            type(store).write = original
        assert seen == [4] and len(store) == 4                 # old and new embedding in one transaction


# -- file modes --------------------------------------------------------------------------------------
def test_a_pre_existing_empty_file_becomes_an_owner_only_gallery(tmp_path):
    pre = tmp_path / "pre.db"
    pre.write_bytes(b"")
    os.chmod(pre, 0o644)
    with GalleryStore(pre, FakeIdentity()) as store, store.write() as w:
        w.add_embedding("ada", np.ones(DIM))
    assert file_mode(pre) == 0o600


def test_an_existing_world_readable_gallery_is_made_owner_only_when_opened(tmp_path):
    db = make_gallery(tmp_path / "g.db", people=1, per_person=1)
    os.chmod(db, 0o644)
    proc = gallery_cli("list", "--db", db)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


# -- odd entries and odd names ------------------------------------------------------------------------
def test_dangling_links_and_fifos_in_a_photo_folder_are_listed_as_skipped(tmp_path):
    root = tmp_path / "photos"
    write_photo(root / "ada" / "1.jpg", ("ada", 100, 0.05))
    os.symlink(tmp_path / "nowhere.jpg", root / "ada" / "2.jpg")
    os.mkfifo(root / "ada" / "3.jpg")
    os.mkfifo(root / "Bob_1.jpg")
    with GalleryStore(tmp_path / "g.db", FakeIdentity()) as store:
        report = Enroller(FakeDetector(), FakeEmbedder(), image_reader=fake_reader,
                          quality_fn=fake_quality).enroll_folder(root, store, progress=False)
    reasons = {r.path.name: r.reason for r in report.results if r.status == SKIPPED}
    assert reasons == {"2.jpg": "a symbolic link to nothing", "3.jpg": "not a photo: a FIFO (named pipe)",
                       "Bob_1.jpg": "not a photo: a FIFO (named pipe)"}
    assert report.counts()[ENROLLED] == 1


@pytest.mark.parametrize("new", ["../x", "a/b", "..", "bad\x1b[31mname", "tab\there", "x" * 201])
def test_rename_refuses_names_that_are_paths_or_hold_control_characters(tmp_path, new):
    db = make_gallery(tmp_path / "g.db", people=2, per_person=1)
    proc = gallery_cli("rename", "person_1", new, "--db", db)
    one_error_line(proc, "new name must")


def test_gallery_list_escapes_control_characters_in_names(tmp_path):
    db = tmp_path / "g.db"
    with GalleryStore(db, FakeIdentity()) as store:
        store._conn.execute("INSERT INTO people(name, created) VALUES (?, 0)", ("evil\x1b]0;pwned\x07",))
    proc = gallery_cli("list", "--db", db)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "evil\\x1b]0;pwned\\x07" in proc.stdout


def test_printable_escapes_controls_and_keeps_other_text():
    from facetrack.text import printable

    assert printable("José Müller") == "José Müller"
    assert printable("a\x1b[2Jb\u202e") == "a\\x1b[2Jb\\u202e"
