"""Command line of the evaluation: ``python -m evaluation COMMAND`` (see :data:`EXAMPLES`).

Commands: synth, score, bench, scaling, regression, report, composite, degrade, replay,
detector-recall; ``python -m evaluation --help`` lists them with their help.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("evaluation")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = REPO_ROOT.parent / "shared"


#: Shown under ``--help`` (plain text).
EXAMPLES = """\
examples:
  python -m evaluation synth --photos ../shared/data/probe --photos ../shared/data/gallery \\
      --gallery ../shared/data/gallery --out runs/synth --seed 0 --frames 2000
  python -m evaluation score --tracks runs/out/tracks.txt --names runs/out/names.csv --gt runs/synth
  python -m evaluation bench --source runs/synth/video.mp4 --gallery ../shared/data/gallery --json
  python -m evaluation report --out runs/report
  python -m evaluation replay --seeds 0 1 --out runs/replay --cache runs/replay-cache
"""


def _size(text: str):
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _print_result(result: dict, table=None) -> None:
    """Print ``result`` as ``table(result)`` (markdown), or as indented JSON without ``table``."""
    print(table(result) if table is not None else json.dumps(result, indent=1, sort_keys=True))


def cmd_synth(args) -> int:
    from . import synth
    from .sprites import yolo_detect_fn

    detect = yolo_detect_fn(args.detector)
    people = synth.people_from_folders(args.photos, detect, gallery_dir=args.gallery)
    if not people:
        log.error("no usable face photos under %s", args.photos)
        return 1
    w, h = args.size
    extra = {}
    if args.preset == "broadcast":
        from .broadcast import crowd_people

        crowd = args.crowd if args.crowd is not None else [c for c in _default_crowd() if c.exists()]
        people = people + crowd_people(crowd, detect)
        extra = {"preset": "broadcast", "crowd": [str(c) for c in crowd], "faces_per_frame": None}
    scenario = synth.plan_sequence(people, seed=args.seed, num_frames=args.frames, width=w, height=h, fps=args.fps,
                                   faces_per_frame=args.faces, num_cameras=args.cameras,
                                   preset=None if args.preset == "default" else args.preset)
    gt = synth.write_sequence(args.out, scenario, people, progress=not args.quiet,
                              extra_info={"photos": [str(p) for p in args.photos],
                                          "gallery": str(args.gallery) if args.gallery else None,
                                          "faces_per_frame": args.faces, **extra},
                              codec=args.codec or ("h264" if args.preset == "broadcast" else "mp4v"))
    enrolled = sum(i.enrolled for i in gt.identities.values())
    print(f"wrote {args.out}: {scenario.num_frames} frames, {len(scenario.shots)} shots, {len(gt.boxes)} gt boxes, "
          f"{len(gt.identities)} ids ({enrolled} enrolled)")
    return 0


def _default_crowd():
    """The crowd photos of the broadcast preset under ``../shared/data``."""
    from .broadcast import DEFAULT_CROWD_PHOTOS

    return [DEFAULT_SHARED / "data" / c for c in DEFAULT_CROWD_PHOTOS]


def cmd_score(args) -> int:
    from . import gt as gtio
    from . import metrics

    truth = gtio.load_ground_truth(args.gt, gallery_dir=args.gallery)
    tracks = gtio.read_mot(args.tracks)
    tracks = gtio.attach_names(tracks, names_file=args.names, events_file=args.events)
    result = metrics.score(truth, tracks, iou_threshold=args.iou, min_visibility=args.min_visibility,
                           warmup_seconds=args.warmup)
    _print_result(result, None if args.json else metrics.format_table)
    return 0


def cmd_bench(args) -> int:
    from . import bench

    missing = [str(x) for x in (args.source, args.gallery, args.gt) if x is not None and not Path(x).exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    result = bench.run_bench(args.source, args.gallery, gt_dir=args.gt, detector=args.detector,
                             embedder=args.embedder, devices=args.device, max_frames=args.max_frames,
                             baseline=not args.no_baseline, progress=not args.quiet, out_dir=args.out,
                             config_path=args.config, repeats=args.repeats)
    _print_result(result, None if args.json else bench.format_bench)
    return 0


def cmd_scaling(args) -> int:
    from . import bench

    result = bench.run_scaling(photos=args.photos, gallery=args.gallery, detector=args.detector,
                               embedder=args.embedder, faces=args.faces, gallery_sizes=args.gallery_sizes,
                               frames=args.frames, work_dir=args.out, config_path=args.config)
    _print_result(result)
    return 0


def cmd_regression(args) -> int:
    import tempfile

    from . import regression

    broadcast = args.preset == "broadcast"
    with tempfile.TemporaryDirectory() as work:
        measure = regression.measure_broadcast if broadcast else regression.measure
        measured = measure(args.shared / "models", args.shared / "data", Path(work), config_path=args.config)
    _print_result(measured)
    if args.record:
        (regression.record_broadcast if broadcast else regression.record)(measured, args.record)
        print(f"recorded {args.record}")
        return 0
    if args.check:
        check = regression.check_broadcast if broadcast else regression.check
        problems = check(measured, json.loads(Path(args.check).read_text()))
        for p in problems:
            print(f"REGRESSION: {p}")
        return 1 if problems else 0
    return 0


def cmd_report(args) -> int:
    from . import report

    path = report.build_report(args.out, shared=args.shared, frames=args.frames, seed=args.seed,
                               quick=args.quick, reuse=args.reuse, config_path=args.config,
                               validation_seeds=args.validation_seeds, repeats=args.repeats)
    print(f"wrote {path}")
    return 0


def cmd_degrade(args) -> int:
    from .degrade import degrade

    video = degrade(args.src, args.dst, blur_sigma=args.blur_sigma, bitrate=args.bitrate)
    print(f"wrote {video} (blur sigma {args.blur_sigma:g} px, {args.bitrate}) with the ground truth of {args.src}")
    return 0


def cmd_composite(args) -> int:
    from . import composite
    from .sprites import yolo_detect_fn

    videos = [args.videos / f"{name}.mp4" for name in composite.TALKING_HEADS]
    w, h = args.size
    truth = composite.write_composite(args.out, videos, yolo_detect_fn(args.detector), heights=args.heights,
                                      num_frames=args.frames, width=w, height=h, fps=args.fps, seed=args.seed,
                                      enroll_count=args.enroll_frames)
    hs = truth.boxes.tlwh[:, 3]
    print(f"wrote {args.out}: {truth.num_frames} frames, {len(truth.boxes)} gt boxes, {len(truth.identities)} "
          f"speakers, face heights {hs.min():.1f}-{hs.max():.1f} px; gallery {args.out / 'gallery'}")
    return 0


def cmd_replay(args) -> int:
    from . import replay

    if args.compare is not None:
        diff = replay.compare(args.compare, args.out)
        for name, what in diff.items():
            print(f"{name}: {what}")
        return 0 if diff and all(v == "same" for v in diff.values()) else 1
    summary = replay.replay(args.shared, args.out, args.cache, seeds=args.seeds, frames=args.frames,
                            size=args.size, clips=args.clips, config_path=args.config, preset=args.preset,
                            two_pass=args.two_pass, folders=args.folders)
    for name, res in summary.items():
        s = res["score"] or {}
        print(f"{name}: IDF1 {s.get('idf1', float('nan')):.4f}, {s.get('id_switches')} switches, "
              f"wrong names {s.get('wrong_name_rate', float('nan')):.4f} of {s.get('named_boxes')} named, "
              f"named after warm-up {s.get('named_after_warmup', float('nan')):.4f}; "
              f"cache misses {res['cache_misses']}")
        if res.get("two_pass"):
            t = res["two_pass"]
            print(f"{name} two-pass: wrong names {t.get('wrong_name_rate', float('nan')):.4f} of "
                  f"{t.get('named_boxes')} named, named after warm-up {t.get('named_after_warmup', float('nan')):.4f}")
    return 0


def cmd_detector_recall(args) -> int:
    from . import detector_recall as dr
    from .report import LABELS_DIR

    clips = [LABELS_DIR / f"{name}.csv" for name in args.clips]
    dense = {"broadcast": args.broadcast or args.out / "broadcast",
             "composite": args.composite or args.out / "composite"}
    sequences = dr.sequences_present(clips, dense, video_dir=args.shared / "data" / "video", stride=args.stride)
    if not sequences:
        log.error("no sequence found (see the log lines above)")
        return 1

    def make_detector(size: int, conf: float):
        from models.detector import FaceDetector

        return FaceDetector(args.weights, device=args.device, input_size=size, confidence_threshold=conf).detect

    machine = dr.machine_info(args.device)
    result = dr.run_detector_recall(sequences, make_detector, sizes=args.sizes, confidences=args.confidence,
                                    iou_threshold=args.iou)
    result.update(weights=str(args.weights), stride=args.stride, machine=machine,
                  load_average_after=dr.machine_info(args.device)["load_average"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detector_recall.json").write_text(json.dumps(result, indent=1) + "\n")
    table = dr.format_recall_tables(result)
    (args.out / "detector_recall.md").write_text(table)
    print(table)
    print(f"wrote {args.out / 'detector_recall.json'}")
    return 0


def build_parser(prog: str = "python -m evaluation") -> argparse.ArgumentParser:
    shared = DEFAULT_SHARED
    p = argparse.ArgumentParser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                                description="Evaluation: the simulator and its ground truth, tracking and naming "
                                            "metrics, speed against a naive baseline, the report.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)

    s = sub.add_parser("synth", help="compose a broadcast-like video with ground truth from face photos")
    s.add_argument("--photos", type=Path, action="append", required=True,
                   help="folder of person folders (repeatable; earlier folders are preferred for sprites)")
    s.add_argument("--gallery", type=Path, default=None,
                   help="the enrolment folder: people with a folder there are enrolled")
    s.add_argument("--out", type=Path, required=True, help="folder for video.mp4, gt/gt.txt, identities.json, cuts.txt")
    s.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same sequence [default: 0]")
    s.add_argument("--frames", type=int, default=2000, help="number of frames [default: 2000]")
    s.add_argument("--size", type=_size, default=(1280, 720), metavar="WxH", help="frame size [default: 1280x720]")
    s.add_argument("--fps", type=float, default=30.0, help="frame rate [default: 30]")
    s.add_argument("--faces", type=float, default=4.0, help="cast size per shot [default: 4]")
    s.add_argument("--cameras", type=int, default=4, help="number of camera set-ups cut between [default: 4]")
    s.add_argument("--detector", type=Path, default=shared / "models" / "yolov8n-face.pt",
                   help="face detector weights used once to cut sprites")
    s.add_argument("--preset", choices=("default", "broadcast"), default="default",
                   help="broadcast: wide shots of 14-40 px faces, 4-8 people a shot, turned heads, H.264 "
                        "(evaluation/broadcast.py); --faces and --cameras are then the preset's")
    s.add_argument("--crowd", type=Path, action="append", default=None,
                   help="with --preset broadcast: a photo whose every face is a person who is not enrolled "
                        "(repeatable) [default: ../shared/data/probe/_group/dlib_bald_guys.jpg]")
    s.add_argument("--codec", choices=("mp4v", "h264"), default=None,
                   help="video codec [default: mp4v; h264 (ffmpeg, ~3 Mbit/s at 720p) with --preset broadcast]")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("score", help="tracking and naming metrics against dense or sparse ground truth")
    s.add_argument("--tracks", type=Path, required=True, help="MOT rows frame,id,x,y,w,h,score,-1,-1,-1[,name]")
    s.add_argument("--events", type=Path, default=None, help="the pipeline's events.jsonl (names per appearance)")
    s.add_argument("--names", type=Path, default=None, help="names shown per frame (demo.py --names): frame,track_id,name CSV with a header; "
                        "preferred over --events")
    s.add_argument("--gt", type=Path, required=True, help="a synth/MOT folder, or a sparse labels.csv")
    s.add_argument("--gallery", type=Path, default=None, help="for sparse labels: who is enrolled")
    s.add_argument("--iou", type=float, default=0.5, help="IoU needed to match a track box to a gt box")
    s.add_argument("--min-visibility", type=float, default=0.5,
                   help="gt boxes less visible than this are 'don't care' (neither missed nor matched)")
    s.add_argument("--warmup", type=float, default=1.0,
                   help="seconds after a person's first appearance excluded from 'named after warm-up'")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("bench", help="speed per stage, pipeline vs naive baseline, naming accuracy of both")
    s.add_argument("--source", type=Path, required=True, help="the video to run on")
    s.add_argument("--gallery", type=Path, default=shared / "data" / "gallery",
                   help="photo folder to enroll [default: ../shared/data/gallery]")
    s.add_argument("--gt", type=Path, default=None, help="ground truth folder (default: the video's folder if it has gt)")
    _model_flags(s, shared)
    s.add_argument("--device", action="append", default=None, help="cpu / cuda (default: cpu, and cuda if present)")
    s.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop each run after N frames")
    s.add_argument("--no-baseline", action="store_true", help="only the pipeline, not the naive baseline")
    s.add_argument("--repeats", type=_positive_int, default=1,
                   help="time each run this many times, pipeline and baseline interleaved; the run with the median "
                        "FPS gives the timing figures [default: 1]")
    s.add_argument("--out", type=Path, default=None, help="write each run's tracks and per-frame names here "
                        "(<run>-<device>-tracks.txt and -names.csv, as demo.py --tracks --names)")
    s.add_argument("--config", type=Path, default=None, help="YAML configuration [default: configs/default.yaml]")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("scaling", help="FPS and memory vs faces per frame and gallery size")
    s.add_argument("--photos", type=Path, action="append", default=None,
                   help="folder of person folders for the sequences (repeatable) [default: the shared probe and "
                        "gallery photos]")
    s.add_argument("--gallery", type=Path, default=shared / "data" / "gallery",
                   help="photo folder to enroll [default: ../shared/data/gallery]")
    _model_flags(s, shared)
    s.add_argument("--faces", type=int, nargs="+", default=[1, 5, 20, 50],
                   help="faces per frame, one sequence each [default: 1 5 20 50]")
    s.add_argument("--gallery-sizes", type=int, nargs="+", default=[10, 10_000, 1_000_000],
                   help="gallery sizes (embeddings) to time the query at [default: 10 10000 1000000]")
    s.add_argument("--frames", type=int, default=150, help="frames per sequence [default: 150]")
    s.add_argument("--out", type=Path, required=True, help="folder for the sequences rendered")
    s.add_argument("--config", type=Path, default=None, help="YAML configuration [default: configs/default.yaml]")
    s.set_defaults(func=cmd_scaling)

    s = sub.add_parser("regression", help="the CI accuracy run: measure, --record or --check")
    s.add_argument("--shared", type=Path, default=shared, help="the shared models and data [default: ../shared]")
    s.add_argument("--config", type=Path, default=None, help="YAML configuration [default: configs/default.yaml]")
    s.add_argument("--preset", choices=("default", "broadcast"), default="default",
                   help="broadcast: the broadcast-preset sequence (tests/regression_metrics_broadcast.json)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--record", type=Path, default=None, help="write the measurement and thresholds here")
    g.add_argument("--check", type=Path, default=None, help="compare with a recorded file (exit 1 if worse)")
    s.set_defaults(func=cmd_regression)

    s = sub.add_parser("report", help="run everything and write a markdown report with plots")
    s.add_argument("--out", type=Path, required=True, help="folder for report.md, its plots and results")
    s.add_argument("--shared", type=Path, default=shared, help="the shared models and data [default: ../shared]")
    s.add_argument("--frames", type=int, default=2000, help="frames of the main sequence [default: 2000]")
    s.add_argument("--seed", type=int, default=0, help="simulator seed of the main sequence [default: 0]")
    s.add_argument("--quick", action="store_true", help="small sizes everywhere (a smoke run, not for the README)")
    s.add_argument("--reuse", action="store_true", help="reuse results already in --out")
    s.add_argument("--config", type=Path, default=None, help="YAML configuration [default: configs/default.yaml]")
    s.add_argument("--validation-seeds", type=int, nargs="*", default=[],
                   help="more simulator seeds scored for accuracy only (pipeline and baseline, CPU)")
    s.add_argument("--repeats", type=_positive_int, default=3,
                   help="timed runs of the pipeline and of the baseline on the main sequence, interleaved; "
                        "the median-FPS run of each is reported [default: 3; 1 with --quick]")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("degrade", help="a sequence folder copied with its video blurred and re-encoded at a low "
                                       "bitrate (the softer, more compressed faces of real wide shots)")
    s.add_argument("src", type=Path, help="sequence folder (video.mp4, gt/gt.txt, ...)")
    s.add_argument("dst", type=Path, help="folder for the degraded copy")
    s.add_argument("--blur-sigma", type=float, default=1.0, help="Gaussian blur in pixels [default: 1.0]")
    s.add_argument("--bitrate", default="300k", help="H.264 bitrate, ffmpeg syntax [default: 300k]")
    s.set_defaults(func=cmd_degrade)

    s = sub.add_parser("composite", help="the talking-head videos shrunk side by side into one wide H.264 frame, "
                                         "with exact gt and a gallery of frames the clip does not show")
    s.add_argument("--out", type=Path, required=True, help="folder for the video, its ground truth and gallery")
    s.add_argument("--videos", type=Path, default=shared / "data" / "video" / "talking_heads",
                   help="folder of the talking-head videos [default: ../shared/data/video/talking_heads]")
    s.add_argument("--heights", type=float, nargs=4, default=[16, 24, 34, 48],
                   help="face height in pixels of each of the four videos")
    s.add_argument("--frames", type=int, default=250, help="number of frames [default: 250]")
    s.add_argument("--size", type=_size, default=(1280, 720), metavar="WxH", help="frame size [default: 1280x720]")
    s.add_argument("--fps", type=float, default=25.0, help="frame rate [default: 25]")
    s.add_argument("--seed", type=int, default=0, help="random seed [default: 0]")
    s.add_argument("--enroll-frames", type=int, default=4, help="full-resolution frames per speaker in the gallery")
    s.add_argument("--detector", type=Path, default=shared / "models" / "yolov8n-face.pt",
                   help="face detector run on the full-resolution originals for the ground truth")
    s.set_defaults(func=cmd_composite)

    s = sub.add_parser("replay", help="the real tracker and identifier over cached detections and embeddings")
    s.add_argument("--shared", type=Path, default=shared, help="the shared models and data [default: ../shared]")
    s.add_argument("--out", type=Path, required=True, help="tracks, names and scores per sequence go here")
    s.add_argument("--cache", type=Path, default=Path("runs/replay-cache"),
                   help="rendered sequences and model caches (filled on first use) [default: runs/replay-cache]")
    s.add_argument("--seeds", type=int, nargs="*", default=[], help="simulator seeds to replay")
    s.add_argument("--frames", type=int, default=2000, help="frames per simulator sequence [default: 2000]")
    s.add_argument("--size", type=_size, default=(1280, 720), metavar="WxH", help="frame size [default: 1280x720]")
    s.add_argument("--preset", choices=["broadcast", "broadcast-clothing"], default=None,
                   help="replay the simulator's broadcast preset (14-40 px faces, H.264) instead of its default;"
                        " broadcast-clothing: the same in three scenes, each person dressed per scene")
    s.add_argument("--two-pass", action="store_true",
                   help="also score two-pass mode (scene linking, names from the analysis file)")
    s.add_argument("--clips", nargs="*", default=["short_hamilton_clip"],
                   help="hand-labelled real clips (evaluation/labels/NAME.csv, ../shared/data/video/NAME.mp4)")
    s.add_argument("--folders", type=Path, nargs="*", default=[],
                   help="sequence folders in the simulator's layout (a talking-head composite, a degraded copy of "
                        "a sequence), named against their own gallery/ (if any) and the shared gallery's people")
    s.add_argument("--config", type=Path, default=None, help="YAML configuration [default: configs/default.yaml]")
    s.add_argument("--compare", type=Path, default=None,
                   help="instead of running: compare the rows in this folder with those in --out (exit 1 if any differ)")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("detector-recall", help="detector recall by face height and ms per call, per input size "
                                               "and confidence threshold (evaluation/detector_recall.py)")
    s.add_argument("--out", type=Path, required=True, help="detector_recall.json and .md go here")
    s.add_argument("--sizes", type=int, nargs="+", default=[640, 960, 1280], help="detector input sizes")
    s.add_argument("--confidence", type=float, nargs="+", default=[0.5, 0.3], help="confidence thresholds")
    s.add_argument("--weights", type=Path, default=shared / "models" / "yolov8n-face.pt",
                   help="detector weights [default: ../shared/models/yolov8n-face.pt]")
    s.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N [default: cpu]")
    s.add_argument("--shared", type=Path, default=shared,
                   help="videos of the hand-labelled clips are SHARED/data/video/NAME.mp4")
    s.add_argument("--clips", nargs="*", default=["short_hamilton_clip", "facenet_pytorch_pedestrians"],
                   help="hand-labelled clips (evaluation/labels/NAME.csv), scored on every labelled frame")
    s.add_argument("--broadcast", type=Path, default=None,
                   help="a synth --preset broadcast folder [default: OUT/broadcast; skipped when absent]")
    s.add_argument("--composite", type=Path, default=None,
                   help="a composite folder [default: OUT/composite; skipped when absent]")
    s.add_argument("--stride", type=_positive_int, default=3,
                   help="score every STRIDE-th frame of the dense sequences (not of the hand labels)")
    s.add_argument("--iou", type=float, default=0.5, help="IoU needed to match a detection to a gt box")
    s.set_defaults(func=cmd_detector_recall)
    return p


def _model_flags(s: argparse.ArgumentParser, shared: Path) -> None:
    s.add_argument("--detector", type=Path, default=shared / "models" / "yolov8n-face.pt",
                   help="detector weights [default: ../shared/models/yolov8n-face.pt]")
    s.add_argument("--embedder", type=Path, default=shared / "models" / "edgeface_xs.onnx",
                   help="embedder weights [default: ../shared/models/edgeface_xs.onnx]")


def main(argv=None, prog: str = "python -m evaluation") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
