"""Per-frame names: the run loop writes tracks and names files, ``python -m evaluation score`` scores them.

Fake models and the real tracker, identifier, composition (``facetrack.build``),
writers and scorer. The enrolled person is Unknown for the first frames of
the track (the identifier waits for evidence), which only the per-frame
names file shows: events carry the name at the end of the appearance.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from evaluation import gt as gtio
from evaluation.__main__ import main as evaluation_cli
from gallery.index import GalleryIndex
from facetrack.build import build_identifier, build_pipeline
from pipeline.events import EventWriter, FrameWriters, NamesWriter, TracksWriter
from pipeline.loop import run
from test_pipeline_runner import FakeDetector, FakeEmbedder, ListSource, Scene, unit

FRAMES = 40
FPS = 25.0
#: alice (seed 1) is enrolled; seed 2 is somebody not in the gallery.
SCENE = Scene([(1, 20, 40, 1.5, 0.0, 50, 0, FRAMES), (2, 200, 100, -1.0, 0.5, 50, 0, FRAMES)])
CONFIG = {
    "tracker": {"n_init": 2, "max_age": 5},
    "identifier": {"similarity_threshold": 0.5, "min_margin": 0.05, "min_observations": 6},
    "pipeline": {"detect_interval": 1, "warmup_detect_interval": 1, "embed_policy": "all"},
}


def write_ground_truth(folder):
    frames, ids, boxes = [], [], []
    for t in range(FRAMES):
        xyxy, who = SCENE.boxes(t)
        for box, person in zip(xyxy, who):
            frames.append(t + 1)                       # MOT frames are 1-based
            ids.append(person)
            boxes.append([box[0], box[1], box[2] - box[0], box[3] - box[1]])
    table = gtio.BoxTable(np.array(frames), np.array(ids), np.array(boxes), np.ones(len(frames)))
    gtio.write_mot_gt(folder / gtio.GT_FILE, table)
    gtio.write_identities(folder / gtio.IDENTITIES_FILE, {1: gtio.Identity("alice", True),
                                                          2: gtio.Identity("stranger", False)})
    gtio.write_seqinfo(folder / gtio.SEQINFO_FILE, name="fake", frame_rate=FPS, num_frames=FRAMES,
                       width=320, height=240)


@pytest.fixture
def run_files(tmp_path):
    """Run the loop once; the tracks, names and events files, the results, and the gt folder."""
    index = GalleryIndex(["alice"], unit(1)[None])
    pipeline = build_pipeline(CONFIG, FakeDetector(SCENE), FakeEmbedder(SCENE), build_identifier(index, CONFIG))
    paths = {k: tmp_path / n for k, n in (("tracks", "tracks.txt"), ("names", "names.csv"),
                                          ("events", "events.jsonl"))}
    results = []
    run(pipeline, ListSource(SCENE, FRAMES), [], event_writer=EventWriter(paths["events"]),
        tracks_writer=FrameWriters(TracksWriter(paths["tracks"]), NamesWriter(paths["names"])),
        on_frame=results.append)
    write_ground_truth(tmp_path / "gt")
    return paths, results, tmp_path / "gt"


def score(capsys, *args):
    capsys.readouterr()
    assert evaluation_cli(["score", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_names_file_has_one_row_per_tracks_row_with_the_name_shown_on_that_frame(run_files):
    paths, results, _ = run_files
    with open(paths["names"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["frame", "track_id", "name"]
    names = {(int(f), int(t)): n for f, t, n in rows[1:]}
    tracks = gtio.read_mot(paths["tracks"])
    assert len(names) == len(rows) - 1 == len(tracks) > 0
    assert set(names) == set(zip(tracks.frame.tolist(), tracks.ids.tolist()))
    shown = {(r.frame_index + 1, int(t)): n or "" for r in results for t, n in zip(r.track_ids, r.names)}
    assert names == shown
    # The point of the file: the name changes within one appearance (Unknown first, then alice).
    alice_id = next(t for (_, t), n in names.items() if n == "alice")
    alice = [n for (_, t), n in sorted(names.items()) if t == alice_id]
    assert alice[0] == "" and alice[-1] == "alice"


def test_score_counts_the_name_shown_on_each_frame(run_files, capsys):
    paths, results, gt = run_files
    per_frame = score(capsys, "--tracks", paths["tracks"], "--names", paths["names"], "--gt", gt)["naming"]
    at_end = score(capsys, "--tracks", paths["tracks"], "--events", paths["events"], "--gt", gt)["naming"]

    # What the run showed, counted directly (each fake face is matched to its own gt box).
    alice_track = {int(t) for r in results for t, n in zip(r.track_ids, r.names) if n == "alice"}
    assert len(alice_track) == 1
    shown_alice = [n for r in results for t, n in zip(r.track_ids, r.names) if int(t) in alice_track]
    assert per_frame["correct"] == shown_alice.count("alice") > 0
    assert per_frame["unknown_for_enrolled"] == shown_alice.count(None) > 0
    assert per_frame["wrong_name"] == per_frame["named_non_enrolled"] == 0
    assert per_frame["time_to_first_correct_name_median"] > 0

    # Events give the name at the end of the appearance: every frame of alice counts as named.
    assert at_end["correct"] == len(shown_alice) and at_end["unknown_for_enrolled"] == 0
    assert at_end["matched_boxes"] == per_frame["matched_boxes"]
