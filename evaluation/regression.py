"""The accuracy regression run behind CI: a short simulator sequence through
the full pipeline with the real models, scored against its ground truth.

``python -m evaluation regression --record tests/regression_metrics.json``
measures and records the figures; ``tests/test_evaluation_regression.py``
reruns the same measurement and fails when IDF1 or the wrong-name rate gets
worse than the recorded floor/ceiling (the measured value with a small
tolerance, see :func:`record`).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

#: The sequence: short enough for CI on 2 cores, with cuts, crossings, re-entries.
SEQUENCE = dict(seed=0, num_frames=300, width=960, height=540, faces_per_frame=3.0, shot_frames=(60, 120))
#: Tolerances between the recorded measurement and the test's thresholds.
IDF1_TOLERANCE = 0.03
WRONG_NAME_TOLERANCE = 0.005
NAMED_TOLERANCE = 0.05


def measure(shared_models: Path, shared_data: Path, work_dir: Path, *, config_path: Optional[Path] = None) -> dict:
    """Render the sequence, run the pipeline on CPU, score it.

    Returns
    -------
    dict
        ``idf1``, ``mota``, ``hota``, ``id_switches``, ``wrong_name_rate``,
        ``named_after_warmup``, ``named_boxes``, ``gt_boxes``, ``seconds``.
    """
    from . import bench, metrics, synth
    from . import gt as gtio
    from .sprites import yolo_detect_fn

    t0 = time.perf_counter()
    work_dir = Path(work_dir)
    detector_w = Path(shared_models) / "yolov8n-face.pt"
    embedder_w = Path(shared_models) / "edgeface_xs.onnx"
    gallery = Path(shared_data) / "gallery"
    people = synth.people_from_folders([Path(shared_data) / "probe", gallery], yolo_detect_fn(detector_w),
                                       gallery_dir=gallery)
    scenario = synth.plan_sequence(people, **SEQUENCE)
    seq = work_dir / "seq"
    truth = synth.write_sequence(seq, scenario, people)
    parts = bench.build_parts(detector_w, embedder_w, gallery, device="cpu",
                              config=bench.load_settings(config_path), work_dir=work_dir)
    run = bench.timed_run(bench.make_pipeline(parts), seq / "video.mp4", warmup_frames=0)
    gtio.write_mot_tracks(work_dir / "tracks.txt", run["tracks"], with_names=True)
    r = metrics.score(truth, run["tracks"])
    n = r["naming"]
    return {"idf1": r["idf1"], "mota": r["mota"], "hota": r["hota"], "id_switches": r["id_switches"],
            "gt_boxes": r["gt_boxes"], "wrong_name_rate": n["wrong_name_rate"], "named_boxes": n["named_boxes"],
            "named_after_warmup": n["named_after_warmup"], "fps": run["fps"],
            "seconds": time.perf_counter() - t0}


def record(measured: dict, path: Path) -> dict:
    """Write the measurement and the thresholds derived from it to ``path``."""
    data = {
        "sequence": {k: list(v) if isinstance(v, tuple) else v for k, v in SEQUENCE.items()},
        "measured": measured,
        "thresholds": {
            "idf1_min": round(measured["idf1"] - IDF1_TOLERANCE, 4),
            "wrong_name_rate_max": round(measured["wrong_name_rate"] + WRONG_NAME_TOLERANCE, 4),
            "named_after_warmup_min": round(measured["named_after_warmup"] - NAMED_TOLERANCE, 4),
        },
        "command": "python -m evaluation regression --record tests/regression_metrics.json",
    }
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def check(measured: dict, recorded: dict) -> list:
    """Messages for every figure worse than its recorded threshold (empty = pass)."""
    th = recorded["thresholds"]
    problems = []
    if not measured["idf1"] >= th["idf1_min"]:
        problems.append(f"IDF1 {measured['idf1']:.4f} < recorded floor {th['idf1_min']}")
    wn = measured["wrong_name_rate"]
    if wn == wn and not wn <= th["wrong_name_rate_max"]:  # NaN (nothing named) is caught below
        problems.append(f"wrong-name rate {wn:.4f} > recorded ceiling {th['wrong_name_rate_max']}")
    if not measured["named_after_warmup"] >= th["named_after_warmup_min"]:
        problems.append(f"enrolled named after warm-up {measured['named_after_warmup']:.4f} < "
                        f"recorded floor {th['named_after_warmup_min']}")
    return problems
