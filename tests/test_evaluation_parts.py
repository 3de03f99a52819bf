"""Smaller parts of evaluation/: people from photo folders, the naive
baseline, the threshold sweep, bench helpers and the report's target table."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation import gt as gtio
from evaluation import metrics
from evaluation.baseline import NaiveBaseline
from evaluation.bench import PeakRSS, format_bench, random_gallery
from evaluation.report import targets, validation_table
from evaluation.synth import people_from_folders
from tracker.detections import Detections


def _photo(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 255, (160, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)


def fixed_detect(img):
    return np.array([[30.0, 40.0, 90.0, 110.0]]), np.array([0.9])


def test_people_from_folders_prefers_probe_photos_and_marks_enrolment(tmp_path):
    _photo(tmp_path / "gallery" / "alice" / "g.jpg", 0)
    _photo(tmp_path / "probe" / "alice" / "p.jpg", 1)
    _photo(tmp_path / "gallery" / "bob" / "g.jpg", 2)
    _photo(tmp_path / "probe" / "_unknown" / "x.jpg", 3)
    _photo(tmp_path / "probe" / "_unknown" / "y.jpg", 4)
    _photo(tmp_path / "probe" / "_group" / "z.jpg", 5)
    people = people_from_folders([tmp_path / "probe", tmp_path / "gallery"], fixed_detect,
                                 gallery_dir=tmp_path / "gallery")
    by = {p.name: p for p in people}
    assert set(by) == {"alice", "bob", "_unknown/x", "_unknown/y"}
    assert by["alice"].enrolled and by["bob"].enrolled
    assert not by["_unknown/x"].enrolled and not by["_unknown/y"].enrolled
    assert by["alice"].sprites[0].source.endswith("probe/alice/p.jpg")     # not the gallery photo
    assert by["bob"].sprites[0].source.endswith("gallery/bob/g.jpg")       # only photo there is
    s = by["alice"].sprites[0]
    assert s.face_xyxy[2] - s.face_xyxy[0] == pytest.approx(60)


def test_people_without_a_usable_face_are_left_out(tmp_path):
    _photo(tmp_path / "probe" / "carol" / "p.jpg", 0)
    people = people_from_folders([tmp_path / "probe"], lambda img: (np.zeros((0, 4)), np.zeros(0)))
    assert people == []


class FakeDetector:
    def detect(self, frame):
        return Detections(np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32), np.array([0.9, 0.8]))


class FakeEmbedder:
    def embed(self, frame, det):
        e = np.zeros((len(det), 4), np.float32)
        e[:, 0] = 1
        e[1] = [0.6, 0.8, 0, 0]
        return e


def test_naive_baseline_names_each_face_and_gives_fresh_ids():
    from gallery.index import GalleryIndex

    index = GalleryIndex(["alice", "bob"], np.array([[1, 0, 0, 0], [0, 0, 1, 0]], np.float32))
    b = NaiveBaseline(FakeDetector(), FakeEmbedder(), index, similarity_threshold=0.7, min_margin=0.0)
    frame = np.zeros((40, 40, 3), np.uint8)
    r1 = b.process(frame, 0)
    r2 = b.process(frame, 1)
    assert r1.names == ["alice", None]          # second face scores 0.6 < 0.7
    assert list(r1.track_ids) == [1, 2] and list(r2.track_ids) == [3, 4]
    assert b.last_matches.names == ["alice", "alice"]
    assert set(r1.timings) == {"detect", "embed", "identify"}
    with pytest.raises(ValueError, match="similarity_threshold"):
        NaiveBaseline(FakeDetector(), FakeEmbedder(), index, similarity_threshold=2)


def test_naming_sweep_trades_names_for_errors():
    A, B = [10, 10, 40, 40], [200, 10, 40, 40]
    ids = {1: gtio.Identity("alice", True), 2: gtio.Identity("stranger", False)}
    boxes = gtio.BoxTable(np.array([1, 1, 2, 2]), np.array([1, 2, 1, 2]), np.array([A, B, A, B], float), np.ones(4))
    truth = gtio.GroundTruth(boxes, ids, 30.0, 2)
    tracks = gtio.BoxTable(np.array([1, 1, 2, 2]), np.array([5, 6, 5, 6]), np.array([A, B, A, B], float), np.ones(4))
    best = [("alice", 0.8, 0.5), ("alice", 0.4, 0.1), ("alice", 0.6, 0.5), ("bob", 0.3, 0.1)]
    rows = metrics.naming_sweep(truth, tracks, best, [0.2, 0.5, 0.9])
    low, mid, high = rows
    assert (low["correct"], low["named_non_enrolled"]) == (2, 2)      # everything named
    assert (mid["correct"], mid["named_non_enrolled"]) == (2, 0)      # stranger's scores are below 0.5
    assert (high["correct"], high["named_boxes"]) == (0, 0)
    assert mid["wrong_name_rate"] == 0 and low["wrong_name_rate"] == pytest.approx(0.5)


def test_random_gallery_keeps_the_real_people():
    real = np.eye(4, dtype=np.float32)[:2]
    idx = random_gallery(["alice", "bob"], real, 12, per_person=5)
    assert len(idx) == 12 and {"alice", "bob"} <= set(idx.people) and len(idx.people) == 2 + 2
    assert idx.query(real).names == ["alice", "bob"]
    assert len(random_gallery(["alice", "bob"], real, 1)) == 1


def test_peak_rss_sees_an_allocation():
    with PeakRSS() as mem:
        before = mem.peak
        block = np.ones(64 * 2 ** 20, np.uint8)  # 64 MiB, touched
        block[::4096] = 2
    assert mem.peak - before >= 32 * 2 ** 20
    with pytest.raises(ValueError, match="interval"):
        PeakRSS(interval=0)


def _run(fps, stage=10.0):
    from evaluation.bench import STAGES

    return {"fps": fps, "stage_ms": {s: stage for s in STAGES}, "faces_embedded": 3, "peak_rss_mb": 100.0}


def test_format_bench_and_targets():
    bench = {"devices": {"cpu": {"pipeline": _run(20.0), "baseline": _run(8.0), "speed_ratio": 2.5}}}
    text = format_bench(bench)
    assert "| FPS (end to end) | 20.00 | 8.00 |" in text and "2.50x" in text
    score = {"idf1": 0.96, "id_switches_per_1000_gt": 2.0,
             "naming": {"wrong_name_rate": 0.001, "named_after_warmup": 0.95}}
    rows = {r[0]: r[3] for r in targets(score, bench)}
    assert rows["IDF1"] and not rows["ID switches per 1000 gt boxes"]
    assert rows["wrong names, % of named boxes"] and rows["speed, pipeline / naive baseline (wall-clock FPS)"]
    assert not rows["speed, pipeline / naive baseline (CPU time per frame)"]   # absent -> not met


def _accuracy(gt, switches, wrong, non_enrolled, named, after):
    return {"gt_boxes": gt, "idf1": 0.97, "id_switches": switches, "id_switches_per_1000_gt": 1000 * switches / gt,
            "naming_wrong_name": wrong, "naming_named_non_enrolled": non_enrolled, "naming_named_boxes": named,
            "naming_wrong_name_rate": (wrong + non_enrolled) / named, "naming_named_after_warmup": after}


def test_validation_table_pools_switches_and_wrong_names_over_seeds():
    def res(p, b):
        return {"devices": {"cpu": {"pipeline": {"accuracy": p}, "baseline": {"accuracy": b}}}}

    runs = [(0, res(_accuracy(1000, 2, 1, 0, 800, 0.98), _accuracy(1000, 900, 0, 0, 900, 0.99))),
            (1, res(_accuracy(3000, 1, 0, 1, 2200, 0.96), _accuracy(3000, 2000, 0, 0, 2500, 0.95))),
            (2, {"devices": {"cpu": {"pipeline": {}}}})]          # a run without ground truth is left out
    lines = validation_table(runs)
    assert len(lines) == 2 + 2 + 1
    assert lines[2].startswith("| 0 | 1000 | 0.970 | 2 (2.00) | 0.12 % | 98.0 % | 99.0 % |")
    # pooled: 3 switches in 4000 boxes, 2 wrong of 3000 named, naming means 97.0 % vs 97.0 %
    assert lines[-1] == "| all (pooled boxes; mean of the seeds' naming) | 4000 | | 3 (0.75) | 0.07 % | 97.0 % | 97.0 % |"


def test_same_rows_compares_frames_ids_boxes_and_names():
    from evaluation.bench import _same_rows
    from evaluation.gt import BoxTable

    def table(names, x=0.0, ids=(1, 2)):
        return BoxTable(np.array([1, 1]), np.array(ids), np.array([[x, 0, 10, 10], [20, 0, 10, 10]], float),
                        np.ones(2), names)

    a = table(["alice", None])
    assert _same_rows(a, table(["alice", None], x=0.001))
    assert not _same_rows(a, table(["bob", None]))
    assert not _same_rows(a, table(["alice", None], x=1.0))
    assert not _same_rows(a, table(["alice", None], ids=(1, 3)))


def test_format_bench_lists_every_repeat():
    run = dict(_run(20.0), fps_runs=[19.0, 20.0, 21.0], cpu_ms_per_frame_runs=[50.0, 49.0, 48.0],
               cpu_ms_per_frame=49.0)
    text = format_bench({"devices": {"cpu": {"pipeline": run, "baseline": dict(run, fps=8.0), "speed_ratio": 2.5}}})
    assert "| FPS of each run (interleaved; the median run is reported) | 19.00, 20.00, 21.00 |" in text
    assert "| CPU ms per frame of each run | 50.0, 49.0, 48.0 |" in text


def test_environment_names_the_machine_and_the_packages_that_do_the_work():
    from importlib import metadata

    from evaluation.bench import environment, format_environment

    env = environment()
    assert env["logical_cores"] == os.cpu_count()
    assert env["python"] == platform.python_version()
    assert env["packages"]["numpy"] == metadata.version("numpy")
    assert "onnxruntime" not in env["packages"]  # only the GPU distribution is installed (tests/test_install.py)
    line = format_environment(env)
    assert line.startswith(f"{env['cpu']} ({os.cpu_count()} logical cores), Python {platform.python_version()}")
    assert f"numpy {metadata.version('numpy')}" in line


def test_format_bench_starts_with_the_machine_unless_asked_not_to():
    env = {"cpu": "Test CPU 9000", "logical_cores": 2, "python": "3.11.7", "packages": {"torch": "2.14.1"}}
    res = {"environment": env, "devices": {"cpu": {"pipeline": _run(20.0)}}}
    text = format_bench(res)
    assert text.splitlines()[0] == "Machine: Test CPU 9000 (2 logical cores), Python 3.11.7, torch 2.14.1"
    assert "Test CPU" not in format_bench(res, machine=False)
    assert "Machine" not in format_bench({"devices": res["devices"]})


def test_run_bench_lists_every_repeat_as_measured_and_reports_the_median(monkeypatch, tmp_path):
    """Timings scripted per run: run 1 of the pipeline is the slowest, so the
    median run is another one, and run 1's own figures must still be listed."""
    from evaluation import bench
    from evaluation.gt import BoxTable

    scripted = {"pipeline": iter([(14.0, 95.0), (16.0, 93.0), (17.0, 92.0)]),
                "baseline": iter([(7.0, 210.0), (7.5, 205.0), (6.5, 215.0)])}
    rows = BoxTable(np.array([1]), np.array([1]), np.array([[0.0, 0, 10, 10]]), np.ones(1), ["alice"])

    def fake_timed_run(proc, video, **kw):
        fps, cpu = next(scripted[proc])
        return {"fps": fps, "cpu_ms_per_frame": cpu, "frames": 10, "seconds": 10 / fps,
                "stage_ms": {s: 1.0 for s in bench.STAGES}, "faces_embedded": 1, "peak_rss_mb": 1.0,
                "detection_frames": 1, "tracks": rows, "best_matches": None}

    monkeypatch.setattr(bench, "build_parts", lambda *a, **k: None)
    monkeypatch.setattr(bench, "make_pipeline", lambda parts: "pipeline")
    monkeypatch.setattr(bench, "make_baseline", lambda parts: "baseline")
    monkeypatch.setattr(bench, "timed_run", fake_timed_run)
    res = bench.run_bench(tmp_path / "v.mp4", tmp_path, detector=tmp_path / "d.pt", embedder=tmp_path / "e.onnx",
                          devices=["cpu"], repeats=3, config_path=tmp_path / "none.yaml")
    cpu = res["devices"]["cpu"]
    assert cpu["pipeline"]["fps_runs"] == [14.0, 16.0, 17.0]
    assert cpu["pipeline"]["cpu_ms_per_frame_runs"] == [95.0, 93.0, 92.0]
    assert (cpu["pipeline"]["fps"], cpu["pipeline"]["cpu_ms_per_frame"]) == (16.0, 93.0)
    assert cpu["baseline"]["fps_runs"] == [7.0, 7.5, 6.5]
    assert cpu["baseline"]["fps"] == 7.0
    assert cpu["speed_ratio"] == pytest.approx(16.0 / 7.0)
    assert cpu["cpu_time_ratio"] == pytest.approx(210.0 / 93.0)
    assert cpu["pipeline"]["identical_runs"] and cpu["baseline"]["identical_runs"]


def test_the_bench_command_names_a_missing_input_instead_of_a_traceback(tmp_path, capsys, monkeypatch):
    from evaluation import bench
    from evaluation.__main__ import main

    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: pytest.fail("ran with a missing input"))
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    assert main(["bench", "--source", str(video), "--gallery", str(tmp_path), "--gt", str(tmp_path / "nogt")]) == 2
    assert f"no such file or folder: {tmp_path / 'nogt'}" in capsys.readouterr().err
