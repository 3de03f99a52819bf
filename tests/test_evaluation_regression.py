"""CI accuracy regression: a short simulator sequence through the full
pipeline with the real models; fails when IDF1, the wrong-name rate or the
share of enrolled boxes named drops below the values recorded in
``tests/regression_metrics.json`` (re-record with
``python -m evaluation regression --record tests/regression_metrics.json``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation import regression

RECORDED = Path(__file__).resolve().parent / "regression_metrics.json"


def test_check_flags_each_regression():
    recorded = {"thresholds": {"idf1_min": 0.9, "wrong_name_rate_max": 0.01, "named_after_warmup_min": 0.8}}
    good = {"idf1": 0.95, "wrong_name_rate": 0.0, "named_after_warmup": 0.9}
    assert regression.check(good, recorded) == []
    assert "IDF1" in regression.check({**good, "idf1": 0.85}, recorded)[0]
    assert "wrong-name" in regression.check({**good, "wrong_name_rate": 0.02}, recorded)[0]
    # naming nobody has no wrong names (NaN rate) but fails the naming floor
    assert "named" in regression.check({**good, "wrong_name_rate": float("nan"), "named_after_warmup": 0.0},
                                       recorded)[0]


def test_record_sets_thresholds_below_the_measurement(tmp_path):
    data = regression.record({"idf1": 0.9, "wrong_name_rate": 0.001, "named_after_warmup": 0.95}, tmp_path / "r.json")
    assert data["thresholds"]["idf1_min"] < 0.9 < data["thresholds"]["idf1_min"] + 0.1
    assert json.loads((tmp_path / "r.json").read_text()) == data


def test_the_broadcast_wrong_name_ceiling_is_capped(tmp_path):
    measured = {"named_share": 0.3, "named_after_warmup": 0.33, "wrong_name_rate": 0.004}
    th = regression.record_broadcast(measured, tmp_path / "b.json")["thresholds"]
    cap = regression.BROADCAST_WRONG_NAME_CAP
    assert th["wrong_name_rate_max"] == cap < 0.004 + regression.BROADCAST_WRONG_NAME_TOLERANCE
    assert th["named_share_min"] == round(0.3 - regression.BROADCAST_NAMED_TOLERANCE, 4)
    low = regression.record_broadcast({**measured, "wrong_name_rate": 0.0}, tmp_path / "c.json")["thresholds"]
    assert low["wrong_name_rate_max"] == regression.BROADCAST_WRONG_NAME_TOLERANCE   # under the cap: unchanged
    assert regression.check_broadcast({**measured, "wrong_name_rate": 0.011}, {"thresholds": th})


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_accuracy_has_not_regressed(shared_models, shared_data, detector_weights, embedder_weights,
                                             tmp_path):
    recorded = json.loads(RECORDED.read_text())
    measured = regression.measure(shared_models, shared_data, tmp_path)
    problems = regression.check(measured, recorded)
    assert not problems, f"{problems}; measured {measured}; recorded {recorded['measured']}"


@pytest.mark.integration
def test_the_report_scores_the_hand_labelled_hamilton_frames(tmp_path, shared_data, shared_models):
    from evaluation.report import LABELS_DIR, score_labelled_clip

    res = score_labelled_clip(shared_data / "video" / "short_hamilton_clip.mp4", LABELS_DIR / "short_hamilton_clip.csv",
                              shared_data / "gallery", detector=shared_models / "yolov8n-face.pt",
                              embedder=shared_models / "edgeface_xs.onnx", work_dir=tmp_path)
    naming = res["score"]["naming"]
    assert res["labelled_frames"] == 16 and res["score"]["gt_boxes"] == 33
    assert naming["wrong_name"] == 0 and naming["named_non_enrolled"] == 0
    assert naming["correct"] >= 12, naming
    assert (tmp_path / "tracks.txt").exists() and (tmp_path / "names.csv").exists()


@pytest.mark.integration
def test_bench_repeats_interleave_the_runs_and_report_the_median(tmp_path, shared_data, shared_models):
    from evaluation.bench import run_bench

    res = run_bench(shared_data / "video" / "short_hamilton_clip.mp4", shared_data / "gallery",
                    detector=shared_models / "yolov8n-face.pt", embedder=shared_models / "edgeface_xs.onnx",
                    devices=["cpu"], max_frames=12, repeats=3, out_dir=tmp_path)
    cpu = res["devices"]["cpu"]
    assert res["repeats"] == 3
    for mode in ("pipeline", "baseline"):
        runs = cpu[mode]["fps_runs"]
        assert len(runs) == 3 and len(cpu[mode]["cpu_ms_per_frame_runs"]) == 3
        assert cpu[mode]["fps"] == sorted(runs)[1]                     # the median run
        assert cpu[mode]["frames"] == 12 and cpu[mode]["identical_runs"] is True
    assert cpu["speed_ratio"] == pytest.approx(cpu["pipeline"]["fps"] / cpu["baseline"]["fps"])
    for name in ("baseline-cpu-names.csv", "baseline-cpu-tracks.txt", "pipeline-cpu-names.csv",
                 "pipeline-cpu-tracks.txt"):
        assert (tmp_path / name).stat().st_size > 0
    with pytest.raises(ValueError, match="repeats"):
        run_bench(shared_data / "video" / "short_hamilton_clip.mp4", shared_data / "gallery",
                  detector=shared_models / "yolov8n-face.pt", embedder=shared_models / "edgeface_xs.onnx",
                  devices=["cpu"], max_frames=12, repeats=0)


# ------------------------------------------------------------------ the broadcast preset
RECORDED_BROADCAST = Path(__file__).resolve().parent / "regression_metrics_broadcast.json"


def test_broadcast_check_flags_a_naming_drop_and_wrong_names(tmp_path):
    good = {"named_share": 0.2, "named_after_warmup": 0.25, "wrong_name_rate": 0.0}
    recorded = regression.record_broadcast(good, tmp_path / "b.json")
    assert recorded["thresholds"]["named_share_min"] == pytest.approx(0.2 - regression.BROADCAST_NAMED_TOLERANCE)
    assert regression.check_broadcast(good, recorded) == []
    assert "named correctly" in regression.check_broadcast({**good, "named_share": 0.1}, recorded)[0]
    assert "warm-up" in regression.check_broadcast({**good, "named_after_warmup": 0.1}, recorded)[0]
    assert "wrong-name" in regression.check_broadcast({**good, "wrong_name_rate": 0.05}, recorded)[0]
    assert regression.check_broadcast({**good, "wrong_name_rate": float("nan")}, recorded) == []


def test_the_recorded_broadcast_figures_are_the_broadcast_sequence():
    data = json.loads(RECORDED_BROADCAST.read_text())
    assert data["sequence"]["preset"] == "broadcast"
    assert data["sequence"]["num_frames"] == regression.BROADCAST_SEQUENCE["num_frames"]
    assert {r["label"] for r in data["measured"]["by_height"]} >= {"0-30", "30-50"}


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_naming_on_the_broadcast_preset_has_not_dropped(shared_models, shared_data, detector_weights,
                                                                 embedder_weights, tmp_path):
    recorded = json.loads(RECORDED_BROADCAST.read_text())
    measured = regression.measure_broadcast(shared_models, shared_data, tmp_path)
    problems = regression.check_broadcast(measured, recorded)
    assert not problems, f"{problems}; measured {measured}; recorded {recorded['measured']}"
