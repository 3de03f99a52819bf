"""Two-pass mode of ``facetrack run`` / ``demo.py``: analyse a whole file, then render every output from it.

``--two-pass`` runs pass 1 (detect, embed, track, name, link the tracks of
each scene) over the whole file into an analysis file, and then pass 2,
which renders the video, the events, the tracks and the names from that
file alone, so every frame of a linked identity carries its name, earlier
frames included. ``--render ANALYSIS`` runs pass 2 only: after correcting a
name in the file, the outputs are rendered again in seconds, without the
models (:mod:`pipeline.analysis`).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    """The two-pass options of the run command line."""
    parser.add_argument("--two-pass", action="store_true",
                        help="files only: pass 1 analyses the whole file (faces, tracks, scene links) into"
                             " --analysis, pass 2 renders every output from it, so a name found on any track of"
                             " a person shows on all their frames of the scene, earlier ones too")
    parser.add_argument("--analysis", metavar="PATH",
                        help="the analysis file that --two-pass writes [default: the first --output with"
                             " .analysis.json, else analysis.json]")
    parser.add_argument("--render", metavar="ANALYSIS",
                        help="pass 2 only: render the outputs from an analysis file (names corrected in it"
                             " included) without running the models; --source defaults to the file's")


def analysis_path(args) -> Path:
    """Where ``--two-pass`` writes its analysis file."""
    if args.analysis:
        return Path(args.analysis)
    files = [o for o in args.output if "://" not in str(o)]
    return Path(files[0]).with_suffix(".analysis.json") if files else Path("analysis.json")


def run_two_pass(args, config) -> int:
    """Pass 1 into the analysis file, then pass 2 from it; the exit status."""
    from facetrack.build import build_models, build_pipeline
    from facetrack.demo_cli import DemoError, check_output_files, exit_status, gallery_identifier
    from pipeline.analysis import AnalysisRecorder, take_corroboration
    from pipeline.loop import run
    from pipeline.sources import open_source

    config = {**config, "link_scenes": True}
    path = analysis_path(args)
    source = open_source(args.source, **config["source"])
    try:
        if source.is_live:
            raise DemoError("--two-pass needs a video file: a live source has no end to analyse first")
        check_output_files(args)
        detector, embedder = build_models(config, models_dir=args.models_dir, device=args.device,
                                          progress=not args.quiet)
        identifier, recorder = gallery_identifier(args, config, detector, embedder, args.quiet,
                                                  source_name=str(source.description))
        pipeline = build_pipeline(config, detector, embedder, identifier)
        analysis = AnalysisRecorder(path, source=str(args.source), width=source.width, height=source.height,
                                    fps=source.fps, **take_corroboration(identifier))
    except BaseException:
        source.close()
        raise
    summary = run(pipeline, source, [], tracks_writer=analysis, max_frames=args.max_frames,
                  progress=not args.quiet, recorder=recorder)
    print(f"pass 1: {summary.frames} frames analysed in {summary.seconds:.1f} s ({summary.fps:.1f} FPS); "
          f"analysis in {path}", file=sys.stderr)
    status = exit_status(summary)
    if status != 0:
        return status
    return render(args, config, path)


def render(args, config, path) -> int:
    """Pass 2: the outputs of ``args`` rendered from the analysis file at ``path``; the exit status."""
    from facetrack.build import build_blur
    from facetrack.demo_cli import (check_output_files, close_outputs, exit_status, make_sinks, open_line_writers,
                                    print_summary)
    from pipeline.analysis import AnalysisError, AnalysisReplay
    from pipeline.events import FrameWriters
    from pipeline.loop import run
    from pipeline.overlay import Overlay
    from pipeline.sources import open_source

    replay = AnalysisReplay.load(path)
    doc = replay.document
    spec = args.source if args.source != "webcam" or not doc.get("source") else doc["source"]
    source = open_source(spec, **config["source"])
    args.source = spec                     # the events' source
    event_writer, frame_writers, sinks = None, FrameWriters(), []
    try:
        if (source.width, source.height) != (doc.get("width"), doc.get("height")):
            raise AnalysisError(f"{path} was made on a {doc.get('width')}x{doc.get('height')} video, and "
                                f"{spec} is {source.width}x{source.height}")
        check_output_files(args)
        sinks = make_sinks(args, source)
        overlay = Overlay(**config["overlay"])
        event_writer, frame_writers = open_line_writers(args, config)
    except BaseException:
        close_outputs(sinks, frame_writers, event_writer, source)
        raise
    # The frames pass 1 analysed, unless asked for fewer (an analysis of the first N frames renders N).
    max_frames = args.max_frames or len(doc["frames"]) or None
    summary = run(replay, source, sinks, overlay=overlay, event_writer=event_writer,
                  tracks_writer=frame_writers if frame_writers.writers else None, max_frames=max_frames,
                  progress=not args.quiet, blur=build_blur(config, args.blur), **config["loop"])
    print_summary(summary, args)
    return exit_status(summary)
