"""The accuracy regression run behind CI: a short simulator sequence through
the full pipeline with the real models, scored against its ground truth.

``python -m evaluation regression --record tests/regression_metrics.json``
measures and records the figures; ``tests/test_evaluation_regression.py``
reruns the same measurement and fails when IDF1 or the wrong-name rate gets
worse than the recorded floor/ceiling (the measured value with a small
tolerance, see :func:`record`).

Next to it runs the broadcast regression: a 640x360 sequence of the
simulator's broadcast preset (14-40 px faces, 4-8 people a shot, H.264),
measured by :func:`measure_broadcast`, recorded by :func:`record_broadcast`
in ``tests/regression_metrics_broadcast.json``
(``python -m evaluation regression --preset broadcast --record ...``) and
checked by :func:`check_broadcast`: it fails when the share of enrolled
people's boxes shown their name drops or wrong names rise. It holds the
small-faces issue's broadcast figure (90 % named right asked).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np

log = logging.getLogger(__name__)

#: The sequence: short enough for CI on 2 cores, with cuts, crossings, re-entries.
SEQUENCE = dict(seed=0, num_frames=300, width=960, height=540, faces_per_frame=3.0, shot_frames=(60, 120))
#: Tolerances between the recorded measurement and the test's thresholds.
IDF1_TOLERANCE = 0.03
WRONG_NAME_TOLERANCE = 0.005
NAMED_TOLERANCE = 0.05
#: The broadcast sequence: the preset's seed 1 at 640x360 (the size of the real sitcom excerpt of the small-faces
#: issue), 600 frames: the sequence of
#: ``python -m evaluation replay --preset broadcast --seeds 1 --frames 600 --size 640x360``.
BROADCAST_SEQUENCE = dict(seed=1, num_frames=600, width=640, height=360)
#: Broadcast tolerances (absolute): share of enrolled gt boxes named correctly, wrong-name rate.
BROADCAST_NAMED_TOLERANCE = 0.03
BROADCAST_WRONG_NAME_TOLERANCE = 0.01
#: The broadcast wrong-name ceiling is never recorded above this (1 % of named boxes, twice the small-faces
#: issue's 0.5 % target), so recording a wrong box cannot loosen it.
BROADCAST_WRONG_NAME_CAP = 0.01


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


#: The recorded figures of the default sequence: (measured key, "min" floor or "max" ceiling, tolerance, label).
LIMITS = (
    ("idf1", "min", IDF1_TOLERANCE, "IDF1"),
    ("wrong_name_rate", "max", WRONG_NAME_TOLERANCE, "wrong-name rate"),
    ("named_after_warmup", "min", NAMED_TOLERANCE, "enrolled named after warm-up"),
)


def thresholds(measured: dict, limits) -> dict:
    """Floors (``<key>_min``) and ceilings (``<key>_max``) derived from ``measured`` with each limit's tolerance.

    A limit is ``(key, kind, tolerance, label)``, or for a ceiling ``(key, kind, tolerance, label, cap)``:
    the ceiling is never above its cap. A floor is never below 0; a figure that is NaN (nothing named)
    gives a ceiling of its tolerance.
    """
    out = {}
    for key, kind, tolerance, _, *cap in limits:
        value = measured[key]
        value = 0.0 if value != value else value
        bound = max(0.0, value - tolerance) if kind == "min" else value + tolerance
        if cap and kind == "max":
            bound = min(bound, cap[0])
        out[f"{key}_{kind}"] = round(bound, 4)
    return out


def problems(measured: dict, recorded: dict, limits) -> list:
    """Messages for every figure worse than its recorded threshold (empty = pass).

    A NaN figure (nothing named) passes a ceiling and fails a floor.
    """
    th = recorded["thresholds"]
    found = []
    for key, kind, _, label, *_cap in limits:
        value, bound = measured[key], th[f"{key}_{kind}"]
        if kind == "min" and not value >= bound:
            found.append(f"{label} {value:.4f} < recorded floor {bound}")
        elif kind == "max" and value == value and not value <= bound:
            found.append(f"{label} {value:.4f} > recorded ceiling {bound}")
    return found


def _write(path: Path, sequence: dict, measured: dict, limits, command: str) -> dict:
    data = {"sequence": sequence, "measured": measured, "thresholds": thresholds(measured, limits),
            "command": command}
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def record(measured: dict, path: Path) -> dict:
    """Write the measurement and the thresholds derived from it to ``path``."""
    sequence = {k: list(v) if isinstance(v, tuple) else v for k, v in SEQUENCE.items()}
    return _write(path, sequence, measured, LIMITS,
                  "python -m evaluation regression --record tests/regression_metrics.json")


def check(measured: dict, recorded: dict) -> list:
    """Messages for every figure worse than its recorded threshold (empty = pass)."""
    return problems(measured, recorded, LIMITS)


def measure_broadcast(shared_models: Path, shared_data: Path, work_dir: Path, *,
                      config_path: Optional[Path] = None) -> dict:
    """Render the broadcast sequence (H.264), run the pipeline on CPU, score it.

    Returns
    -------
    dict
        ``idf1``, ``mota``, ``id_switches``, ``gt_boxes``, ``enrolled_gt_boxes``,
        ``named_share`` (correct names / every scored gt box of an enrolled
        person), ``named_after_warmup``, ``wrong_name_rate``, ``named_boxes``,
        ``by_height`` (:func:`evaluation.metrics.naming_by_height` rows),
        ``face_height_median``, ``fps``, ``seconds``.
    """
    from . import bench, broadcast, metrics, synth
    from . import gt as gtio
    from .sprites import yolo_detect_fn

    t0 = time.perf_counter()
    work_dir = Path(work_dir)
    detector_w = Path(shared_models) / "yolov8n-face.pt"
    gallery = Path(shared_data) / "gallery"
    detect = yolo_detect_fn(detector_w)
    people = synth.people_from_folders([Path(shared_data) / "probe", gallery], detect, gallery_dir=gallery)
    crowd = [Path(shared_data) / c for c in broadcast.DEFAULT_CROWD_PHOTOS if (Path(shared_data) / c).exists()]
    people += broadcast.crowd_people(crowd, detect)
    scenario = synth.plan_sequence(people, preset="broadcast", **BROADCAST_SEQUENCE)
    truth = synth.write_sequence(work_dir / "seq", scenario, people, codec="h264")
    parts = bench.build_parts(detector_w, Path(shared_models) / "edgeface_xs.onnx", gallery, device="cpu",
                              config=bench.load_settings(config_path), work_dir=work_dir)
    run = bench.timed_run(bench.make_pipeline(parts), work_dir / "seq" / "video.mp4", warmup_frames=0)
    gtio.write_mot_tracks(work_dir / "tracks.txt", run["tracks"], with_names=True)
    r = metrics.score(truth, run["tracks"])
    n, rows = r["naming"], r["naming_by_height"]
    enrolled = sum(b["gt_boxes"] for b in rows)
    return {"idf1": r["idf1"], "mota": r["mota"], "id_switches": r["id_switches"], "gt_boxes": r["gt_boxes"],
            "enrolled_gt_boxes": enrolled, "named_share": sum(b["correct"] for b in rows) / max(enrolled, 1),
            "named_after_warmup": n["named_after_warmup"], "wrong_name_rate": n["wrong_name_rate"],
            "named_boxes": n["named_boxes"], "by_height": rows,
            "face_height_median": float(np.median(truth.boxes.tlwh[:, 3])), "fps": run["fps"],
            "seconds": time.perf_counter() - t0}


#: The recorded figures of the broadcast sequence, as :data:`LIMITS`.
BROADCAST_LIMITS = (
    ("named_share", "min", BROADCAST_NAMED_TOLERANCE, "enrolled boxes named correctly"),
    ("named_after_warmup", "min", BROADCAST_NAMED_TOLERANCE, "enrolled named after warm-up"),
    ("wrong_name_rate", "max", BROADCAST_WRONG_NAME_TOLERANCE, "wrong-name rate", BROADCAST_WRONG_NAME_CAP),
)


def record_broadcast(measured: dict, path: Path) -> dict:
    """Write the broadcast measurement and its thresholds to ``path``."""
    from .broadcast import BROADCAST

    sequence = {**BROADCAST_SEQUENCE, "preset": "broadcast", "shot_frames": list(BROADCAST.shot_frames), "codec": "h264"}
    return _write(path, sequence, measured, BROADCAST_LIMITS,
                  "python -m evaluation regression --preset broadcast --record tests/regression_metrics_broadcast.json")


def check_broadcast(measured: dict, recorded: dict) -> list:
    """Messages for every broadcast figure worse than its recorded threshold (empty = pass)."""
    return problems(measured, recorded, BROADCAST_LIMITS)
