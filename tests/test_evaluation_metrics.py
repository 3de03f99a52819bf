"""Metric wrappers on tiny hand-made cases whose answers are worked out by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation import gt as gtio
from evaluation import metrics
from evaluation.__main__ import main as cli

A = [10, 10, 40, 40]       # tlwh
B = [200, 10, 40, 40]      # far from A
A_SHIFT = [12, 10, 40, 40]  # IoU with A = 38*40 / (2*1600 - 38*40) ~ 0.905


def table(rows, names=None):
    """rows: (frame, id, tlwh[, score])."""
    return gtio.BoxTable(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                         np.array([r[2] for r in rows], float).reshape(-1, 4),
                         np.array([r[3] if len(r) > 3 else 1.0 for r in rows]), names)


def truth(rows, identities=None, fps=30.0, num_frames=None, labelled=None):
    t = table(rows)
    ids = identities or {int(i): gtio.Identity(f"p{i}", True) for i in np.unique(t.ids)}
    return gtio.GroundTruth(t, ids, fps, num_frames or int(t.frame.max()), labelled_frames=labelled)


def test_perfect_tracking_scores_one():
    gt = truth([(f, 1, A) for f in range(1, 6)] + [(f, 2, B) for f in range(1, 6)])
    r = metrics.score(gt, table([(f, 7, A) for f in range(1, 6)] + [(f, 9, B) for f in range(1, 6)]))
    assert r["mota"] == 1 and r["idf1"] == 1 and r["id_switches"] == 0
    assert r["hota"] == pytest.approx(1.0) and r["deta"] == pytest.approx(1.0) and r["assa"] == pytest.approx(1.0)
    assert r["gt_boxes"] == 10 and r["misses"] == 0 and r["false_positives"] == 0


def test_one_id_switch():
    # gt 1 for 4 frames, tracked as 5 then 6: 1 switch, MOTA = 1 - 1/4,
    # IDF1 = 2 IDTP / (gt + pred) = 2*2 / 8 = 0.5.
    gt = truth([(f, 1, A) for f in range(1, 5)])
    r = metrics.score(gt, table([(1, 5, A), (2, 5, A), (3, 6, A), (4, 6, A)]))
    assert r["id_switches"] == 1
    assert r["mota"] == pytest.approx(0.75)
    assert r["idf1"] == pytest.approx(0.5)
    assert r["id_switches_per_1000_gt"] == pytest.approx(250.0)


def test_miss_and_false_positive():
    # frame 2: the track box is far from the gt: 1 miss + 1 false positive; MOTA = 1 - 2/2 = 0.
    gt = truth([(1, 1, A), (2, 1, A)])
    r = metrics.score(gt, table([(1, 3, A), (2, 3, B)]))
    assert (r["misses"], r["false_positives"], r["id_switches"]) == (1, 1, 0)
    assert r["mota"] == pytest.approx(0.0)


def test_iou_threshold_decides_a_match():
    gt = truth([(1, 1, A)])
    assert metrics.score(gt, table([(1, 3, A_SHIFT)]))["misses"] == 0
    assert metrics.score(gt, table([(1, 3, A_SHIFT)]), iou_threshold=0.95)["misses"] == 1


def test_fragmentation():
    # tracked on frames 1-2 and 4-5 with the same id, missed on 3: 1 fragmentation, 0 switches.
    gt = truth([(f, 1, A) for f in range(1, 6)])
    r = metrics.score(gt, table([(f, 3, A) for f in (1, 2, 4, 5)]))
    assert (r["fragmentations"], r["id_switches"], r["misses"]) == (1, 0, 1)


def test_hota_by_hand():
    # One gt on 4 frames, tracked exactly on the first 2 only. At every alpha:
    # DetA = TP / (TP + FN + FP) = 2/4; AssA = 2 / (2 + 2 + 0) = 0.5; HOTA = sqrt(DetA * AssA) = 0.5.
    gt = truth([(f, 1, A) for f in range(1, 5)])
    r = metrics.score(gt, table([(1, 3, A), (2, 3, A)]))
    assert r["deta"] == pytest.approx(0.5) and r["assa"] == pytest.approx(0.5) and r["hota"] == pytest.approx(0.5)


def test_hota_with_a_switch():
    # 4 frames, ids 5,5,6,6: DetA = 1; for each TP the pair has TPA 2, FNA 2, FPA 0 -> AssA 0.5; HOTA = sqrt(0.5).
    gt = truth([(f, 1, A) for f in range(1, 5)])
    r = metrics.score(gt, table([(1, 5, A), (2, 5, A), (3, 6, A), (4, 6, A)]))
    assert r["deta"] == pytest.approx(1.0) and r["assa"] == pytest.approx(0.5)
    assert r["hota"] == pytest.approx(np.sqrt(0.5))


def test_low_visibility_gt_is_dont_care():
    # gt 2 is 20 % visible on frame 1: neither a miss (untracked) nor a false positive (tracked).
    gt = truth([(1, 1, A, 1.0), (1, 2, B, 0.2), (2, 1, A, 1.0), (2, 2, B, 0.2)])
    tracked = metrics.score(gt, table([(1, 3, A), (1, 4, B), (2, 3, A)]))
    assert (tracked["misses"], tracked["false_positives"], tracked["mota"]) == (0, 0, 1.0)
    assert tracked["ignored_gt_boxes"] == 2 and tracked["gt_boxes"] == 2
    strict = metrics.score(gt, table([(1, 3, A), (1, 4, B), (2, 3, A)]), min_visibility=0.0)
    assert strict["misses"] == 1 and strict["gt_boxes"] == 4


def test_sparse_ground_truth_scores_labelled_frames_only(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("frame,x,y,w,h,name\n1,10,10,40,40,alice\n3,10,10,40,40,alice\n3,200,10,40,40,_stranger\n"
                      "5,0,0,0,0,\n")
    gt = gtio.load_ground_truth(labels)
    assert list(gt.labelled_frames) == [1, 3, 5]
    assert {i.name: i.enrolled for i in gt.identities.values()} == {"alice": True, "_stranger": False}
    # frames 2 and 4 are not labelled: a wild box there is not a false positive; frame 5 is
    # labelled empty, so a box there is one.
    tracks = table([(1, 1, A), (2, 1, B), (3, 1, A), (3, 2, B), (4, 9, B), (5, 9, B)],
                   names=["alice", None, "alice", None, None, None])
    r = metrics.score(gt, tracks)
    assert r["frames_scored"] == 3 and r["gt_boxes"] == 3
    assert (r["misses"], r["false_positives"]) == (0, 1)
    assert r["naming"]["correct"] == 2 and r["naming"]["correct_unknown"] == 1


def test_sparse_labels_use_the_gallery_for_enrolment(tmp_path):
    (tmp_path / "gallery" / "bob").mkdir(parents=True)
    labels = tmp_path / "labels.csv"
    labels.write_text("frame,x,y,w,h,name\n1,10,10,40,40,alice\n1,200,10,40,40,bob\n")
    gt = gtio.load_ground_truth(labels, gallery_dir=tmp_path / "gallery")
    assert {i.name: i.enrolled for i in gt.identities.values()} == {"alice": False, "bob": True}


def test_sparse_labels_need_columns(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("frame,x,y,w,h\n1,1,1,2,2\n")
    with pytest.raises(ValueError, match="name"):
        gtio.load_ground_truth(labels)


def test_naming_counts_by_hand():
    # gt 1 = alice (enrolled), gt 2 = a stranger; 10 fps, frames 1..10.
    ids = {1: gtio.Identity("alice", True), 2: gtio.Identity("stranger", False)}
    gt = truth([(f, 1, A) for f in range(1, 11)] + [(f, 2, B) for f in range(1, 11)], ids, fps=10)
    alice = [None] * 3 + ["bob"] * 2 + ["alice"] * 5        # frames 1-3 unknown, 4-5 wrong, 6-10 right
    stranger = [None] * 8 + ["carol"] * 2                   # named on frames 9-10
    tracks = table([(f, 1, A) for f in range(1, 11)] + [(f, 2, B) for f in range(1, 11)], alice + stranger)
    n = metrics.score(gt, tracks, warmup_seconds=0.5)["naming"]
    assert (n["correct"], n["wrong_name"], n["unknown_for_enrolled"]) == (5, 2, 3)
    assert (n["named_non_enrolled"], n["correct_unknown"]) == (2, 8)
    assert n["named_boxes"] == 9 and n["matched_boxes"] == 20
    assert n["wrong_name_rate"] == pytest.approx(4 / 9)
    assert n["naming_precision"] == pytest.approx(5 / 9)
    assert n["naming_recall"] == pytest.approx(5 / 10)
    # after 0.5 s (5 frames at 10 fps) from the first appearance (frame 1): frames 6..10, all correct
    assert n["named_after_warmup"] == pytest.approx(1.0)
    assert n["time_to_first_correct_name"]["1:alice"] == pytest.approx(0.5)
    # a missed box of an enrolled person counts against named_after_warmup
    n2 = metrics.score(gt, tracks.select(~((tracks.ids == 1) & (tracks.frame == 10))), warmup_seconds=0.5)["naming"]
    assert n2["named_after_warmup"] == pytest.approx(4 / 5)


def test_enrolled_never_named():
    ids = {1: gtio.Identity("alice", True)}
    gt = truth([(f, 1, A) for f in range(1, 4)], ids)
    n = metrics.score(gt, table([(f, 1, A) for f in range(1, 4)], [None] * 3))["naming"]
    assert n["enrolled_never_named"] == 1 and n["time_to_first_correct_name"]["1:alice"] is None
    assert np.isnan(n["wrong_name_rate"])  # nothing was named


def test_names_from_events_and_names_file(tmp_path):
    tracks = table([(f, 4, A) for f in range(1, 7)])
    # event frames are 0-based (pipeline.events), track rows 1-based
    events = [{"track_id": 4, "name": None, "first_frame": 0, "last_frame": 1},
              {"track_id": 4, "name": "alice", "first_frame": 2, "last_frame": 4}]
    assert gtio.names_from_events(tracks, events) == [None, None, "alice", "alice", "alice", None]
    assert gtio.names_from_events(tracks, events, zero_based=False) == [None, "alice", "alice", "alice", None, None]
    ev = tmp_path / "events.jsonl"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events))
    names = tmp_path / "names.csv"
    names.write_text("frame,track_id,name\n1,4,bob\n2,4,\n")
    assert gtio.attach_names(tracks, events_file=ev).names[2] == "alice"
    by_file = gtio.attach_names(tracks, names_file=names, events_file=ev).names
    assert by_file[:3] == ["bob", None, None]


def test_mot_round_trip_with_name_column(tmp_path):
    t = table([(1, 3, A, 0.9), (2, 3, A_SHIFT, 0.8)], names=["alice", None])
    gtio.write_mot_tracks(tmp_path / "t.txt", t, with_names=True)
    back = gtio.read_mot(tmp_path / "t.txt")
    assert back.names == ["alice", None]
    np.testing.assert_allclose(back.tlwh, t.tlwh)
    gtio.write_mot_tracks(tmp_path / "u.txt", t)
    assert gtio.read_mot(tmp_path / "u.txt").names is None


def test_gt_rows_with_consider_zero_are_dropped(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_text("1,1,10,10,40,40,1,1,1.0\n1,2,200,10,40,40,0,1,1.0\n")
    gt = gtio.load_ground_truth(tmp_path)
    assert list(gt.boxes.ids) == [1]


@pytest.mark.parametrize("kw, name", [(dict(iou_threshold=0), "iou_threshold"),
                                      (dict(min_visibility=1.5), "min_visibility")])
def test_score_rejects_bad_keywords(kw, name):
    gt = truth([(1, 1, A)])
    with pytest.raises(ValueError, match=name):
        metrics.score(gt, table([(1, 1, A)]), **kw)


def test_score_cli(tmp_path, capsys):
    seq = tmp_path / "seq"
    ids = {1: gtio.Identity("alice", True)}
    gtio.write_mot_gt(seq / gtio.GT_FILE, table([(f, 1, A) for f in range(1, 5)]))
    gtio.write_identities(seq / gtio.IDENTITIES_FILE, ids)
    gtio.write_mot_tracks(tmp_path / "tracks.txt", table([(1, 5, A), (2, 5, A), (3, 6, A), (4, 6, A)]))
    (tmp_path / "events.jsonl").write_text(json.dumps({"track_id": 5, "name": "alice", "first_frame": 0,
                                                       "last_frame": 1}) + "\n")
    assert cli(["score", "--tracks", str(tmp_path / "tracks.txt"), "--events", str(tmp_path / "events.jsonl"),
                "--gt", str(seq), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["id_switches"] == 1 and r["idf1"] == pytest.approx(0.5)
    assert r["naming"]["correct"] == 2 and r["naming"]["unknown_for_enrolled"] == 2
    assert cli(["score", "--tracks", str(tmp_path / "tracks.txt"), "--gt", str(seq)]) == 0
    assert "| IDF1 | 0.500 |" in capsys.readouterr().out


# ------------------------------------------------------------ naming by face height
SMALL = [10, 10, 20, 20]      # 20 px tall: bin 0-30
SMALL2 = [300, 10, 20, 20]
MID = [100, 100, 40, 40]      # 40 px: bin 30-50
BIG = [400, 100, 90, 90]      # 90 px: bin >= 80


def test_naming_by_height_counts_each_outcome_in_its_bin():
    ids = {1: gtio.Identity("ann", True), 2: gtio.Identity("bob", True), 3: gtio.Identity("cid", True),
           4: gtio.Identity("_stranger", False)}
    # frames 1-4: ann small (right name, right, Unknown, no box); bob mid (wrong name on 1, right on 2);
    # cid big (right); the stranger small, named once on frame 1.
    gt = truth([(f, 1, SMALL) for f in range(1, 5)] + [(1, 2, MID), (2, 2, MID), (1, 3, BIG)]
               + [(1, 4, SMALL2), (2, 4, SMALL2)], identities=ids)
    rows = [(1, 7, SMALL), (2, 7, SMALL), (3, 7, SMALL), (1, 8, MID), (2, 8, MID), (1, 9, BIG),
            (1, 5, SMALL2), (2, 5, SMALL2)]
    names = ["ann", "ann", None, "cid", "bob", "cid", "ann", None]
    res = metrics.naming_by_height(gt, table(rows, names))
    by = {r["label"]: r for r in res}
    assert [r["label"] for r in res] == ["0-30", "30-50", "50-80", ">= 80"]
    small, mid, empty, big = by["0-30"], by["30-50"], by["50-80"], by[">= 80"]
    assert (small["gt_boxes"], small["correct"], small["unknown"], small["no_box"], small["wrong_name"]) == (4, 2, 1, 1, 0)
    assert small["correct_pct"] == pytest.approx(50) and small["no_box_pct"] == pytest.approx(25)
    assert (small["other_gt_boxes"], small["other_named"]) == (2, 1)
    assert (mid["gt_boxes"], mid["correct"], mid["wrong_name"]) == (2, 1, 1)
    assert mid["wrong_name_pct"] == pytest.approx(50)
    assert big["correct_pct"] == pytest.approx(100) and big["hi"] is None
    assert empty["gt_boxes"] == 0 and np.isnan(empty["correct_pct"])
    assert sum(r["share"] for r in res if r["gt_boxes"]) == pytest.approx(1.0)
    assert small["share"] == pytest.approx(4 / 7)
    for r in res:
        if r["gt_boxes"]:
            assert r["correct_pct"] + r["unknown_pct"] + r["no_box_pct"] + r["wrong_name_pct"] == pytest.approx(100)


def test_naming_by_height_on_sparse_labels_counts_labelled_frames_only(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("frame,x,y,w,h,name\n2,10,10,20,20,ann\n2,100,100,40,40,_someone\n5,0,0,0,0,\n")
    gt = gtio.read_sparse_labels(labels)
    # the track shows ann on frames 1-5; frame 5 is labelled with nobody, frames 1, 3, 4 are not labelled
    tracks = table([(f, 3, SMALL) for f in range(1, 6)], ["ann"] * 5)
    res = {r["label"]: r for r in metrics.naming_by_height(gt, tracks, bins=(0, 30, float("inf")))}
    assert res["0-30"]["gt_boxes"] == 1 and res["0-30"]["correct"] == 1
    assert res[">= 30"]["gt_boxes"] == 0 and res[">= 30"]["other_gt_boxes"] == 1


def test_naming_by_height_ignores_low_visibility_boxes_and_checks_bins():
    gt = truth([(1, 1, SMALL, 0.2), (2, 1, SMALL, 1.0)])
    res = metrics.naming_by_height(gt, table([(1, 4, SMALL)], ["p1"]), bins=(0, 100))
    assert res[0]["gt_boxes"] == 1 and res[0]["no_box"] == 1
    with pytest.raises(ValueError, match="bins"):
        metrics.naming_by_height(gt, table([(1, 4, SMALL)]), bins=(30, 10))


def test_score_carries_the_height_table_and_prints_it():
    gt = truth([(1, 1, SMALL), (2, 1, SMALL)])
    r = metrics.score(gt, table([(1, 4, SMALL), (2, 4, SMALL)], ["p1", None]))
    assert r["naming_by_height"][0]["correct"] == 1 and r["naming_by_height"][0]["unknown"] == 1
    text = metrics.format_table(r)
    assert "| face height (px) |" in text and "| 0-30 | 2 | 100.0 % | 50.0 % | 50.0 % | 0.0 % | 0.0 % | 0 / 0 |" in text
    json.dumps(r)
