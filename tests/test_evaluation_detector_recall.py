"""Detector recall by face height: greedy matching, "don't care" boxes and the
per-bin counts on tiny hand-made boxes, and the whole measurement with a fake
detector on a few frames written here."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from evaluation import detector_recall as dr
from evaluation import gt as gtio
from tracker.detections import Detections


def test_greedy_match_takes_the_highest_iou_first_and_each_box_once():
    gt = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], float)
    # det 0 matches gt 0 (IoU 0.91, and 0.31 with gt 1); det 1 is gt 1 (IoU 1), so it is taken first
    det = np.array([[0, 0, 10, 11], [5, 0, 15, 10]], float)
    pairs = dr.greedy_match(gt, det, 0.5)
    assert pairs.tolist() == [[1, 1], [0, 0]]
    assert dr.greedy_match(gt, det[:1], 0.5).tolist() == [[0, 0]]
    assert dr.greedy_match(gt, np.zeros((0, 4)), 0.5).shape == (0, 2)
    with pytest.raises(ValueError, match="iou_threshold"):
        dr.greedy_match(gt, det, 0.0)


def test_greedy_is_not_hungarian():
    # det 0 has IoU 0.82 with gt 0 and 0.67 with gt 1; det 1 has 0.67 with gt 0 and 0.33 with gt 1.
    # Greedy takes (gt 0, det 0) first and leaves gt 1 missed (Hungarian would find both).
    gt = np.array([[0, 0, 10, 10], [3, 0, 13, 10]], float)
    det = np.array([[1, 0, 11, 10], [-2, 0, 8, 10]], float)
    found, fp = dr.match_frame(gt, det, iou_threshold=0.5)
    assert found.tolist() == [True, False] and fp == 1


def test_match_frame_below_the_iou_threshold_is_a_miss_and_a_false_positive():
    gt = np.array([[0, 0, 10, 10]], float)
    found, fp = dr.match_frame(gt, np.array([[5, 5, 15, 15]], float))  # IoU 25/175
    assert found.tolist() == [False] and fp == 1
    found, fp = dr.match_frame(np.zeros((0, 4)), np.array([[0, 0, 4, 4]], float))
    assert found.shape == (0,) and fp == 1


def test_a_dont_care_box_is_never_found_and_its_detection_is_no_false_positive():
    gt = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)
    det = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]], float)
    found, fp = dr.match_frame(gt, det, np.array([True, False]))
    assert found.tolist() == [True, False] and fp == 1
    with pytest.raises(ValueError, match="care"):
        dr.match_frame(gt, det, np.array([True]))


def test_height_counts_bin_by_gt_height_and_leave_out_dont_care_boxes():
    counts = dr.HeightCounts()
    # heights 12 (<20), 20 (20-30: bins are [lo, hi)), 45 (30-50), 80 (>=80), 500 (>=80)
    counts.add([12, 20, 45, 80, 500], found=[False, True, True, True, False],
               care=[True, True, True, True, True], false_positives=2)
    counts.add([25, 60], found=[False, False], care=[True, False], false_positives=0)
    rows = counts.rows()
    assert [r["label"] for r in rows] == ["<20", "20-30", "30-50", "50-80", ">=80"]
    assert [r["gt"] for r in rows] == [1, 2, 1, 0, 2]
    assert [r["found"] for r in rows] == [0, 1, 1, 0, 1]
    assert rows[1]["recall"] == 0.5 and np.isnan(rows[3]["recall"]) and rows[4]["hi"] is None
    s = counts.summary()
    assert (s["gt"], s["found"], s["frames"], s["false_positives"]) == (6, 3, 2, 2)
    assert s["recall"] == 0.5 and s["fp_per_frame"] == 1.0
    with pytest.raises(ValueError, match="increasing"):
        dr.HeightCounts([0, 20, 20])


class BoxDetector:
    """Returns fixed boxes, whatever the frame."""

    def __init__(self, xyxy):
        self.xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        self.calls = 0

    def __call__(self, frame):
        self.calls += 1
        return Detections(xyxy=self.xyxy, confidence=np.ones(len(self.xyxy), np.float32))


def _dense_folder(tmp_path, frames=7):
    """A 7-frame video with two gt faces a frame: 16 px tall (found) and 60 px tall (missed)."""
    folder = tmp_path / "seq"
    (folder / "gt").mkdir(parents=True)
    writer = cv2.VideoWriter(str(folder / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    for _ in range(frames):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    rows = [(f, i, x, 10, w, h, 1, 1, 1.0) for f in range(1, frames + 1)
            for i, (x, w, h) in ((1, (10, 12, 16)), (2, (60, 50, 60)))]
    (folder / "gt" / "gt.txt").write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    return folder


def test_run_detector_recall_scores_every_stride_th_frame_for_each_setting(tmp_path):
    seq = dr.dense_sequence(_dense_folder(tmp_path), "toy", stride=3)
    assert seq.frames == [1, 4, 7]
    built = []

    def make(size, conf):
        built.append((size, conf))
        return BoxDetector([[10, 10, 22, 26], [0, 100, 5, 105]])  # the small face, and a false positive

    result = dr.run_detector_recall([seq], make, sizes=(640, 1280), confidences=(0.5,))
    assert built == [(640, 0.5), (1280, 0.5)]
    runs = result["sequences"]["toy"]["runs"]
    assert [r["input_size"] for r in runs] == [640, 1280]
    assert result["sequences"]["toy"]["frames"] == 3 and result["sequences"]["toy"]["width"] == 160
    bins = {b["label"]: (b["found"], b["gt"]) for b in runs[0]["bins"]}
    assert bins["<20"] == (3, 3) and bins["50-80"] == (0, 3)
    assert runs[0]["fp_per_frame"] == 1.0 and runs[0]["calls"] == 3 and runs[0]["ms_median"] >= 0
    table = dr.format_recall_tables(result)
    assert "### toy (160x120, 3 frames)" in table and "<20 px (n=3)" in table and "CPU ms" in table
    assert "| 1280 | 0.5 | 100.0 % |" in table


def test_sequences_present_skips_what_is_missing(tmp_path):
    labels = tmp_path / "clip.csv"
    labels.write_text("frame,x,y,w,h,name\n2,10,10,12,16,a\n")
    seqs = dr.sequences_present([labels, tmp_path / "none.csv"], {"toy": _dense_folder(tmp_path), "gone": tmp_path},
                                video_dir=tmp_path / "seq", stride=2)
    assert [s.name for s in seqs] == ["toy"]  # clip.mp4 is absent: only the dense folder is kept
    (tmp_path / "seq" / "clip.mp4").write_bytes((tmp_path / "seq" / "video.mp4").read_bytes())
    seqs = dr.sequences_present([labels], {}, video_dir=tmp_path / "seq")
    assert [s.name for s in seqs] == ["clip"] and seqs[0].frames == [2]
    assert isinstance(seqs[0].truth, gtio.GroundTruth)
