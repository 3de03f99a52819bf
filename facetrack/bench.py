"""End-to-end speed of the demo's scheduling against the every-frame baseline.

    python -m facetrack.bench VIDEO [--gallery PHOTO_DIR] [--set section.key=value ...]
    python -m facetrack.bench limit VIDEO [VIDEO ...] --gallery PHOTO_DIR [--max-frames 300] [--every 1 3]
    python -m facetrack.bench detectors VIDEO [VIDEO ...] [--frames 8] [--repeats 3] [--forms pt openvino ...]
    python -m facetrack.bench live CLIP --gallery PHOTO_DIR [--fps 24 30] [--seconds 20] [--modes ...]
    python -m facetrack.bench memory VIDEO --gallery PHOTO_DIR [--frames 100000] [--loop] [--every 5000]

``limit`` measures the floor (decode plus one detector pass on every frame,
or on one frame in k, at the pipeline's detector input) and reports the
pipeline's FPS as a fraction of it, with every stage's share of the frame
time (:func:`evaluation.bench.run_limit`). ``detectors`` times every CPU
form of the detector (the ``.pt``, ONNX, OpenVINO, int8) on real frames in
interleaved rounds and scores each one's boxes against the ``.pt``'s
(:func:`models.bench.compare_detectors`). ``live`` serves a clip with ffmpeg
on 127.0.0.1 at each frame rate and reports capture-to-overlay latency
(p50/p95/p99), processed FPS and the drop rate (:mod:`evaluation.live_bench`);
``memory`` reports RSS at checkpoints of a long looped run
(:mod:`evaluation.memory_bench`).

Runs the video twice through :func:`pipeline.loop.run` exactly as
``demo.py`` does (parts from :mod:`facetrack.build`, decode thread, overlay,
mp4 file sink in its thread):
once with the configuration (``configs/default.yaml`` plus ``--set``
overrides) and once in the *every-frame* mode (``detect_interval: 1``,
``embed_policy: all``, the same detector input size unless ``--set`` changes
it only for the tuned run). It prints, for both: end-to-end FPS, mean
milliseconds per frame of every stage, CPU seconds per frame (user + system
of this process, less sensitive than wall time to other load on the
machine), the load average, and how the names shown agree: for every frame,
the set of names on screen is compared with the baseline's.
"""
from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import yaml

EVERY_FRAME = {"pipeline": {"detect_interval": 1, "warmup_detect_interval": 1, "embed_policy": "all",
                            "crop_detection": False}}


def _missing(paths) -> bool:
    """Say which of ``paths`` do not exist (on stderr); True when any is missing."""
    missing = [str(v) for v in paths if not Path(v).exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
    return bool(missing)


def _unwritable(paths) -> bool:
    """Say which output files (None skipped) cannot be written, before a long run (on stderr);
    True when any cannot."""
    from pipeline.sink_base import SinkError, check_writable

    for path in (Path(p) for p in paths if p is not None):
        try:
            check_writable(path)
        except SinkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return True
    return False


def _bench_parts(args, work_dir: Path):
    """The models on ``args.device`` and ``args.gallery`` enrolled in ``work_dir``, with ``args.config``."""
    from evaluation.bench import build_parts, load_settings

    return build_parts(None, None, args.gallery, device=args.device, config=load_settings(args.config),
                       work_dir=work_dir)


def parse_set(items: List[str]) -> Dict[str, Dict]:
    """``["pipeline.detect_interval=3"]`` -> ``{"pipeline": {"detect_interval": 3}}`` (values parsed as YAML)."""
    out: Dict[str, Dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"error: --set wants section.key=value, got {item!r}")
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    return out


def merged(config: Dict, overrides: Dict) -> Dict:
    out = copy.deepcopy(config)
    for section, values in overrides.items():
        if section not in out:
            raise SystemExit(f"error: unknown section {section!r}")
        out[section].update(values)
    return out


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_variant(name: str, config: Dict, video: Path, gallery: Optional[Path], db_dir: Path, *,
                models_dir: Optional[str], device: str, max_frames: Optional[int], models_cache: Dict):
    from facetrack.build import build_identifier, build_index, build_models, build_pipeline, open_gallery
    from facetrack.config import check_config
    from pipeline.overlay import Overlay
    from pipeline.loop import run
    from pipeline.sinks import make_output_sink
    from pipeline.sources import open_source

    check_config(config, origin=name)
    key = yaml.safe_dump({"d": config["detector"], "e": config["embedder"]})
    if key not in models_cache:
        models_cache[key] = build_models(config, models_dir=models_dir, device=device, progress=False)
    detector, embedder = models_cache[key]
    identifier = None
    if gallery is not None:
        store, _ = open_gallery(gallery, detector, embedder, config,
                                db_path=db_dir / f"{embedder.identity.name}.db", progress=False)
        identifier = build_identifier(build_index(store, config), config)
    pipeline = build_pipeline(config, detector, embedder, identifier)
    # Warm up (lazy initialisation of the models), then start from scratch.
    warm = open_source(str(video))
    for _ in range(3):
        frame = warm.read()
        if frame is None:
            break
        pipeline.process(frame.image, frame.index, frame.timestamp)
    warm.close()
    pipeline.reset()

    names: Dict[int, frozenset] = {}

    def collect(result):
        names[result.frame_index] = frozenset(n for n in result.names if n)

    source = open_source(str(video), **config["source"])
    sink = make_output_sink(str(db_dir / f"{name}.mp4"), fps=source.fps)
    load = os.getloadavg()[0]
    cpu0 = cpu_seconds()
    summary = run(pipeline, source, [sink], overlay=Overlay(**config["overlay"]), max_frames=max_frames,
                  on_frame=collect, **config.get("loop", {}))
    cpu = cpu_seconds() - cpu0
    return summary, names, cpu, (load + os.getloadavg()[0]) / 2


def limit_main(argv) -> int:
    """``python -m facetrack.bench limit``: the detector floor and the pipeline's fraction of it."""
    import json

    p = argparse.ArgumentParser(prog="python -m facetrack.bench limit",
                                description="decode + detector floor against the pipeline, per stage")
    p.add_argument("videos", type=Path, nargs="+", help="the video files to measure")
    p.add_argument("--gallery", type=Path, required=True, help="photo folder to enroll (the identify stage)")
    p.add_argument("--config", type=Path, help="YAML configuration [default: configs/default.yaml]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N [default: cpu]")
    p.add_argument("--max-frames", type=int, default=300, help="frames per run (0: the whole video) [300]")
    p.add_argument("--every", type=int, nargs="+", default=[1],
                   help="floors with one detector pass every k frames (the pipeline's interval is added) [1]")
    p.add_argument("--repeats", type=int, default=1, help="interleaved repeats; the median run is reported")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args(argv)
    from evaluation.bench import format_environment, format_limit, run_limit

    if _missing(args.videos + [args.gallery]) or _unwritable([args.json]):
        return 2
    if args.max_frames < 0 or min(args.every) < 1 or args.repeats < 1:
        print("error: --max-frames must be >= 0, --every and --repeats >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        parts = _bench_parts(args, Path(tmp))
        results = [run_limit(v, parts, every=args.every, max_frames=args.max_frames or None, repeats=args.repeats)
                   for v in args.videos]
    print(f"Machine: {format_environment(results[0]['environment'])}; load average {os.getloadavg()[0]:.1f}\n")
    print("\n".join(format_limit(r) for r in results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


#: The detector forms ``detectors`` compares: name -> (weights name, FaceDetector keywords).
DETECTOR_FORMS = {
    "pt": ("yolov8n-face", {"cpu_format": None}),           # the .pt in torch: the reference
    "onnx-static-640": ("yolov8n-face-onnx", {}),
    "onnx": ("yolov8n-face", {"cpu_format": "onnx"}),
    "openvino": ("yolov8n-face", {"cpu_format": "openvino"}),
    "onnx-int8": ("yolov8n-face", {"cpu_format": "onnx-int8"}),
    "tflite-int8": ("yolov8n-face_int8.tflite", {}),
}


def spaced_frames(video: Path, count: int) -> list:
    """``count`` frames spread evenly over ``video`` (decoded by ``pipeline.sources.open_source``)."""
    from pipeline.sources import open_source

    source = open_source(str(video))
    try:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame.image)
    finally:
        source.close()
    if not frames:
        raise SystemExit(f"error: no frame could be decoded from {video}")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    return [frames[i] for i in picks]


def detectors_main(argv) -> int:
    """``python -m facetrack.bench detectors``: every CPU form of the detector, timed interleaved and scored."""
    import json

    from facetrack.build import section
    from facetrack.config import load_config
    from models.bench import compare_detectors
    from models.detector import FaceDetector
    from models.weights import resolve_weights

    p = argparse.ArgumentParser(prog="python -m facetrack.bench detectors",
                                description="CPU detector forms: ms per frame (interleaved) and recall of the .pt")
    p.add_argument("videos", type=Path, nargs="+", help="the videos whose frames are detected")
    p.add_argument("--forms", nargs="+", default=list(DETECTOR_FORMS), choices=list(DETECTOR_FORMS),
                   help="the detector forms to compare (the .pt is always the reference) [all]")
    p.add_argument("--frames", type=int, default=8, help="frames per video, spread over it [8]")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median is reported [3]")
    p.add_argument("--config", type=Path, help="YAML configuration (its detector section) [default: configs/default.yaml]")
    p.add_argument("--models-dir", help="folder with the weights [default: $FACETRACK_MODELS_DIR, then the cache]")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args(argv)
    if "pt" not in args.forms:
        args.forms.insert(0, "pt")            # the reference
    if _missing(args.videos) or _unwritable([args.json]):
        return 2
    det_kw = {k: v for k, v in section(load_config(args.config), "detector").items()
              if k in ("confidence_threshold", "nms_iou_threshold", "input_size", "max_detections")}
    detectors = {}
    for name in args.forms:
        weights, kw = DETECTOR_FORMS[name]
        path = resolve_weights(weights, models_dir=args.models_dir, allow_download=False)
        detectors[name] = FaceDetector(path, device="cpu", **det_kw, **kw)
    results = {}
    for video in args.videos:
        frames = spaced_frames(video, args.frames)
        res = compare_detectors(detectors, frames, reference="pt", repeats=args.repeats)
        results[str(video)] = {"width": frames[0].shape[1], "height": frames[0].shape[0], "frames": len(frames),
                               "forms": res}
        print(f"\n{video.name} ({frames[0].shape[1]}x{frames[0].shape[0]}, {len(frames)} frames, "
              f"{args.repeats} interleaved rounds; load average {os.getloadavg()[0]:.1f})\n")
        print("| form | file | ms per frame (median round) | rounds | CPU ms per frame | faces "
              "| recall of .pt at IoU 0.5 | precision |")
        print("|---|---|---|---|---|---|---|---|")
        for name, r in res.items():
            print(f"| {name} | {detectors[name].path.name} | {r['ms_per_frame']:.1f} | "
                  + ", ".join(f"{v:.0f}" for v in r["ms_per_frame_rounds"])
                  + f" | {r['cpu_ms_per_frame']:.1f} | {r['faces']} | {r['recall']:.3f} | {r['precision']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def memory_main(argv) -> int:
    """``python -m facetrack.bench memory``: RSS over a long run of a looped file, at checkpoints."""
    p = argparse.ArgumentParser(prog="python -m facetrack.bench memory",
                                description="RSS of the real pipeline over a long (looped) run, at checkpoints")
    p.add_argument("video", type=Path, help="the video file to run on")
    p.add_argument("--gallery", type=Path, required=True, help="photo folder to enroll (the identify stage)")
    p.add_argument("--frames", type=int, default=100000, help="frames to process [100000]")
    p.add_argument("--loop", action="store_true", help="restart the video at its end until --frames")
    p.add_argument("--reference", type=int, default=5000, help="the frame the RSS is compared with [5000]")
    p.add_argument("--every", type=int, default=5000, help="frames between checkpoints [5000]")
    p.add_argument("--log", type=Path, help="append each checkpoint to this JSON lines file as it is taken")
    p.add_argument("--config", type=Path, help="YAML configuration [default: configs/default.yaml]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N [default: cpu]")
    args = p.parse_args(argv)
    from evaluation.memory_bench import format_memory, run_memory

    if _missing((args.video, args.gallery)) or _unwritable([args.log]):
        return 2
    if min(args.frames, args.reference, args.every) < 1:
        print("error: --frames, --reference and --every must be >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        parts = _bench_parts(args, Path(tmp))
        checkpoints = run_memory(args.video, parts, frames=args.frames, loop=args.loop, reference=args.reference,
                                 every=args.every, log_path=args.log, work_dir=Path(tmp))
    print(f"{args.video}{' (looped)' if args.loop else ''}: {checkpoints[-1].frame} frames; load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(format_memory(checkpoints, args.reference))
    return 0


def live_main(argv) -> int:
    """``python -m facetrack.bench live``: capture-to-overlay latency and drop rate on a local ffmpeg stream."""
    import json

    p = argparse.ArgumentParser(prog="python -m facetrack.bench live",
                                description="latency p50/p95/p99, processed FPS and drop rate of the real pipeline "
                                "on CLIP served live by ffmpeg on 127.0.0.1 (UDP MPEG-TS) at each --fps")
    p.add_argument("clip", type=Path, help="the video served (re-encoded at each --fps)")
    p.add_argument("--gallery", type=Path, required=True, help="photo folder to enroll (the identify stage)")
    p.add_argument("--fps", type=float, nargs="+", default=[24.0, 30.0], help="stream frame rates [24 30]")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per run [20]")
    p.add_argument("--modes", nargs="+", default=["overlapped", "sequential"], choices=["overlapped", "sequential"],
                   help="output modes (loop.overlap_output true / false) [both]")
    p.add_argument("--config", type=Path, help="YAML configuration [default: configs/default.yaml]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N [default: cpu]")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args(argv)
    from evaluation.live_bench import format_live, run_live

    if _missing((args.clip, args.gallery)) or _unwritable([args.json]):
        return 2
    if args.seconds <= 0 or min(args.fps) <= 0:
        print("error: --seconds and --fps must be > 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        parts = _bench_parts(args, Path(tmp))
        results = run_live(args.clip, parts, fps_list=args.fps, seconds=args.seconds, modes=args.modes,
                           work_dir=Path(tmp))
    print(f"{args.clip} served by ffmpeg -re on 127.0.0.1; {os.cpu_count()} CPUs visible; load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(format_live(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


SUBCOMMANDS = {"limit": limit_main, "detectors": detectors_main, "memory": memory_main, "live": live_main}


def build_parser(prog: str = "python -m facetrack.bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="End-to-end speed of the demo's scheduling against the every-frame baseline: the "
        "video runs twice as the demo runs it (the configuration, then detecting and embedding every face on "
        "every frame) and, for both, FPS, milliseconds per stage, CPU time per frame and the names on screen "
        "are printed. Two more benches take their own options: 'limit VIDEO... --gallery DIR' (the decode + "
        "detector floor and the pipeline's fraction of it, per stage) and 'detectors VIDEO...' (every CPU form "
        "of the detector timed and scored against the .pt); 'live CLIP --gallery DIR' (latency and drops on a local "
        "ffmpeg stream) and 'memory VIDEO --gallery DIR --loop' (RSS over a long run).")
    p.add_argument("video", type=Path, help="the video file to run on")
    p.add_argument("--gallery", type=Path, help="photo folder to enroll (names are compared when given)")
    p.add_argument("--config", help="YAML configuration [default: configs/default.yaml]")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a key for the tuned run (repeatable)")
    p.add_argument("--models-dir", help="folder with the weights [default: $FACETRACK_MODELS_DIR, then the cache]")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N [default: cpu]")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each run after N frames")
    p.add_argument("--no-baseline", action="store_true", help="only the tuned run")
    return p


def main(argv=None, prog: str = "python -m facetrack.bench") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    args = build_parser(prog).parse_args(argv)
    from facetrack.config import load_config

    if not args.video.is_file():
        print(f"error: no such video: {args.video}", file=sys.stderr)
        return 2
    config = load_config(args.config)
    tuned = merged(config, parse_set(args.set))
    variants = [("tuned", tuned)] + ([] if args.no_baseline else [("every-frame", merged(config, EVERY_FRAME))])
    results = {}
    cache: Dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in variants:
            results[name] = run_variant(name, cfg, args.video, args.gallery, Path(tmp),
                                        models_dir=args.models_dir, device=args.device,
                                        max_frames=args.max_frames, models_cache=cache)
    print(f"video {args.video} ({os.cpu_count()} CPUs visible)")
    print(f"tuned = {yaml.safe_dump(tuned['pipeline'], default_flow_style=True).strip()}, "
          f"detector input_size {tuned['detector'].get('input_size')}")
    for name, (summary, names, cpu, load) in results.items():
        ms = summary.stage_ms()
        print(f"{name:12s} {summary.frames} frames {summary.fps:5.1f} FPS  cpu {1000 * cpu / summary.frames:6.1f} ms/frame"
              f"  load {load:.1f}  detect frames {summary.detection_frames}  faces embedded {summary.faces_embedded}"
              f"  track ids {summary.track_ids}")
        print("             ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()))
        shown = Counter(n for s in names.values() for n in s)
        print("             named frames: " + (", ".join(f"{k} {v}" for k, v in sorted(shown.items())) or "none"))
    if "every-frame" in results:
        base, tuned_names = results["every-frame"][1], results["tuned"][1]
        same = sum(base.get(i) == tuned_names.get(i) for i in base)
        only_base = Counter(n for i in base for n in base[i] - tuned_names.get(i, frozenset()))
        only_tuned = Counter(n for i in base for n in tuned_names.get(i, frozenset()) - base[i])
        print(f"names on screen agree with every-frame on {same}/{len(base)} frames; "
              f"missing vs every-frame: {dict(only_base) or 'none'}; extra: {dict(only_tuned) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
