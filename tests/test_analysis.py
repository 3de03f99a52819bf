"""Two-pass mode: the analysis file round-trips, names reach back in time, a corrected name shows everywhere."""
from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from pipeline.analysis import AnalysisError, AnalysisRecorder, AnalysisReplay
from test_scene_linking import END, _render, _run


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Pass 1 once: the analysis file of the linking scenario and the live results."""
    path = tmp_path_factory.mktemp("analysis") / "analysis.json"
    recorder = AnalysisRecorder(path, source="clip.mp4", width=320, height=240, fps=25.0)
    live = _run(True)
    for result in live:
        recorder.write(result)
    recorder.close()
    return path, live


@pytest.fixture
def analysis(recorded, tmp_path):
    """``analysis(editable=False) -> (path, live results)``; editable gives this test's own copy of the file."""
    def get(editable=False):
        path, live = recorded
        if editable:
            mine = tmp_path / "analysis.json"
            mine.write_bytes(path.read_bytes())
            path = mine
        return path, live
    return get


def _replayed(path):
    replay = AnalysisReplay.load(path)
    return [replay.process(_render(t), t, t / 25.0) for t in range(END)]


def test_the_file_round_trips_every_box_and_is_private(analysis):
    path, live = analysis()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = _replayed(path)
    shown = {int(t) for r in live for t in r.track_ids}
    early_boxes = 0
    for a, b in zip(live, again):
        # Pass 2 draws the live boxes, then the boxes a shown track had before it was shown.
        early = [k for k, t in enumerate(a.tentative_ids) if int(t) in shown]
        early_boxes += len(early)
        assert b.track_ids.tolist() == a.track_ids.tolist() + [int(a.tentative_ids[k]) for k in early]
        np.testing.assert_allclose(b.xyxy, np.concatenate([a.xyxy, a.tentative_xyxy[early]]), atol=0.06)
        assert b.predicted.tolist() == a.predicted.tolist() + [False] * len(early) and a.scene == b.scene
    assert early_boxes > 0
    # Saving what was loaded gives the same document.
    doc = json.loads(path.read_text())
    assert AnalysisReplay(doc).document == doc


def test_two_pass_names_a_linked_track_on_every_frame_backwards_too(analysis):
    path, live = analysis()
    again = _replayed(path)
    # Shot 3 (frames 60-99): live, the turned faces are named only once the link is confident.
    live_first = [r.names for r in live[60:66]]
    assert any(n is None for names in live_first for n in names)
    assert all(len(r) == 0 for r in live[60:61])               # live: not yet confirmed (n_init 2)
    for r in again[60:100]:                                     # two-pass: from the shot's first frame
        assert sorted(n for n in r.names) == ["ann", "bob"]
    # The new scene's turned face stays Unknown in both passes.
    assert all(n is None for r in again[100:] for n in r.names)


def test_a_name_corrected_in_the_file_appears_on_every_frame_of_that_identity(analysis):
    path, _ = analysis(editable=True)
    doc = json.loads(path.read_text())
    (ann,) = [i for i in doc["identities"] if i["name"] == "ann"]
    ann["name"] = "Ann Example"
    path.write_text(json.dumps(doc))
    again = _replayed(path)
    members = set(ann["tracks"])
    shown = [(int(t), n) for r in again for t, n in zip(r.track_ids, r.names) if int(t) in members]
    assert shown and all(n == "Ann Example" for _, n in shown)
    assert not any(n == "ann" for r in again for n in r.names)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="other"), "not a facetrack analysis file"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d["tracks"][0].update(identity=123456), "identity 123456"),
    (lambda d: d["identities"][0].update(name=5), "must be a string or null"),
    (lambda d: d["frames"][5]["boxes"].append([1, 2]), "a box is"),
])
def test_a_broken_analysis_file_is_refused_with_what_is_wrong(analysis, edit, message):
    path, _ = analysis(editable=True)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(AnalysisError, match=message):
        AnalysisReplay.load(path)


def test_an_unreadable_analysis_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AnalysisError, match="not valid JSON"):
        AnalysisReplay.load(bad)
    with pytest.raises(AnalysisError, match="cannot read"):
        AnalysisReplay.load(tmp_path / "missing.json")


def _frame(index, boxes, fps=25.0):
    """A FrameResult of ``boxes``: ``(track_id, name, score)`` each, own face names (not linked)."""
    from pipeline.results import FrameResult

    ids = np.asarray([b[0] for b in boxes], np.int64)
    result = FrameResult(frame_index=index, timestamp=index / fps, track_ids=ids,
                         xyxy=np.tile(np.asarray([[10, 10, 30, 34]], np.float32), (len(boxes), 1)),
                         confidence=np.full(len(boxes), 0.8, np.float32), names=[b[1] for b in boxes],
                         scores=np.asarray([b[2] for b in boxes], np.float32), predicted=np.zeros(len(boxes), bool),
                         detected=True, identity_ids=ids, linked=np.zeros(len(boxes), bool), scene=0)
    return result


def _names_written(tmp_path, frames, **kw):
    path = tmp_path / "a.json"
    recorder = AnalysisRecorder(path, source="clip.mp4", width=64, height=48, fps=25.0, **kw)
    for f in frames:
        recorder.write(f)
    recorder.close()
    doc = json.loads(path.read_text())
    replay = AnalysisReplay(doc)
    return {i["id"]: (i["name"], i.get("uncorroborated")) for i in doc["identities"]}, replay


def test_a_small_face_name_stands_when_the_person_is_seen_clearly_before_or_after_it(tmp_path):
    # Track 1: a small face named "ann" at 0.31 (below the large-face threshold 0.35) over frames 0-49;
    # track 2: a close-up of ann at 0.6, 20 s later (frames 550-599); track 3: "bob" at 0.32, never seen clearly.
    frames = [_frame(t, [(1, "ann", 0.31), (3, "bob", 0.32)]) for t in range(50)]
    frames += [_frame(t, [(2, "ann", 0.6)]) for t in range(550, 600)]
    kept, _ = _names_written(tmp_path, frames, corroboration_seconds=30, confident_score=0.35)
    assert kept[1] == ("ann", None)                 # corroborated by the close-up 20 s *later*
    assert kept[2] == ("ann", None)                 # confident itself
    assert kept[3] == (None, "bob")                 # refused, and the refused name is kept for the user
    short, replay = _names_written(tmp_path, frames, corroboration_seconds=10, confident_score=0.35)
    assert short[1] == (None, "ann")                # the close-up is 20 s away: outside a 10 s window
    assert replay.names[1] is None and replay.names[3] is None    # pass 2 shows them Unknown
    off, _ = _names_written(tmp_path, frames)
    assert off[1] == ("ann", None) and off[3] == ("bob", None)    # no window: every face name stands


def test_corroboration_needs_the_large_face_threshold():
    with pytest.raises(ValueError, match="confident_score"):
        AnalysisRecorder("a.json", corroboration_seconds=30)
    with pytest.raises(ValueError, match="corroboration_seconds"):
        AnalysisRecorder("a.json", corroboration_seconds=-1, confident_score=0.35)


def test_take_corroboration_moves_the_identifiers_window_to_the_analysis():
    from types import SimpleNamespace

    from pipeline.analysis import take_corroboration

    ident = SimpleNamespace(corroboration_seconds=60.0, similarity_threshold=0.35)
    assert take_corroboration(ident) == {"corroboration_seconds": 60.0, "confident_score": 0.35}
    assert ident.corroboration_seconds == 0.0                       # pass 1 names from the faces alone
    assert take_corroboration(ident) == {} and take_corroboration(None) == {}


def test_pass_two_draws_a_track_from_its_first_detection_and_drops_false_starts(tmp_path):
    # Track 1 is tentative on frames 0-2 and shown from frame 3; track 9 is a
    # false start, tentative on frames 0-1 and never shown.
    frames = []
    for t in range(6):
        f = _frame(t, [(1, "ann", 0.6)] if t >= 3 else [])
        early = [1] * (t < 3) + [9] * (t < 2)
        f.tentative_ids = np.asarray(early, np.int64)
        f.tentative_xyxy = np.tile(np.asarray([[5, 5, 25, 29]], np.float32), (len(early), 1))
        f.tentative_confidence = np.full(len(early), 0.6, np.float32)
        frames.append(f)
    _, replay = _names_written(tmp_path, frames)
    drawn = [replay.process(np.zeros((48, 64, 3), np.uint8), t, t / 25.0) for t in range(6)]
    assert [r.track_ids.tolist() for r in drawn] == [[1]] * 6
    assert all(r.names == ["ann"] for r in drawn)
    np.testing.assert_allclose(drawn[0].xyxy, [[5, 5, 25, 29]])
    (track,) = replay.document["tracks"]
    assert track["first_frame"] == 0
