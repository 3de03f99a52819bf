"""Track and name faces live: webcam, files, folders and network streams in;
window, video file and re-stream out.

Examples
--------
python demo.py --source webcam --gallery ../shared/data/gallery
python demo.py --source video.mp4 --gallery photos/ --output out.mp4 --events events.jsonl --tracks tracks.txt --no-show
python demo.py --source synth/video.mp4 --gallery photos/ --tracks tracks.txt --names names.csv --no-show
python -m evaluation score --tracks tracks.txt --names names.csv --gt synth/
python demo.py --source rtsp://camera/stream --gallery gallery.db --output rtmp://localhost/live/out --no-show

This is the command line only: it reads the YAML configuration (the one place
that does, with :func:`facetrack.config.load_config`), builds the parts with
:mod:`facetrack.build` and hands them to :func:`pipeline.loop.run`.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

from facetrack.outputs import add_output_arguments, apply_output_arguments, build_event_writer

logger = logging.getLogger("demo")

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it; SIGTERM gives 143, SIGHUP 129.
EXIT_INTERRUPTED = 130
#: Exit status for bad input (source, output, config, gallery, weights).
EXIT_BAD_INPUT = 2
#: Exit status when an output could not be written (sysexits' EX_IOERR); the outputs are closed.
EXIT_WRITE_ERROR = 74
#: Signals handled like Ctrl-C (outside the run loop, which has its own handler).
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class DemoError(Exception):
    """Bad input found by the command line itself."""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP before or after the run loop (``signum``): handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


def build_parser(prog: str = "demo.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Real-time face tracking and identification (YOLO faces, ArcFace embeddings, DeepSORT).",
        epilog="Ctrl-C stops cleanly: outputs are finalised and open appearances written to --events.",
    )
    p.add_argument("--source", default="webcam",
                   help="webcam, a camera index, a video file, an image or a folder of images (named per image, "
                        "without tracking), or a stream URL "
                        "(rtsp://, rtmp://, http(s):// incl. HLS .m3u8, udp://, srt://) [default: webcam]")
    p.add_argument("--gallery",
                   help="a photo folder (one subfolder per person; enrolled incrementally into a gallery "
                        "database) or a gallery .db file")
    p.add_argument("--gallery-db",
                   help="where to keep the database enrolled from a photo folder "
                        "[default: ~/.cache/facetrack/galleries/<folder>-<hash>-<model>.db]")
    p.add_argument("--config", help="YAML configuration [default: configs/default.yaml]")
    p.add_argument("--output", action="append", default=[], metavar="PATH|URL",
                   help="write the annotated video: a file (.mp4, .avi, .mkv, .mov), an HLS playlist (.m3u8) "
                        "or a stream URL (rtmp://, rtsp://, udp://, srt://); for an image source an image file "
                        "(.jpg, .png), for a folder of images a folder; may be repeated")
    p.add_argument("--events", metavar="PATH", help="write appeared and ended events as JSON lines (README: Outputs)")
    p.add_argument("--tracks", metavar="PATH", help="write MOTChallenge rows frame,id,x,y,w,h,score,-1,-1,-1")
    p.add_argument("--names", metavar="PATH",
                   help="write the name shown on every frame: CSV frame,track_id,name, one row per --tracks row "
                        "(empty = Unknown), for python -m evaluation score --names")
    p.add_argument("--no-show", action="store_true", help="do not open a window")
    p.add_argument("--no-remember-unknowns", action="store_true",
                   help="do not store the Unknown people seen in the gallery (the persistent 'Unknown #17' ids "
                        "and the faces for 'unknowns name'; see the unknowns section of the config)")
    p.add_argument("--blur", choices=["unknown", "all", "none"],
                   help="blur faces in the shown and written video: unknown = those not named, all, or none "
                        "[default: blur.mode in the config, none]")
    p.add_argument("--device", choices=None, help="auto, cpu, cuda or cuda:N [default: from the config]")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--models-dir", help="folder with the weights [default: $FACETRACK_MODELS_DIR, then the cache]")
    p.add_argument("--link-scenes", action=argparse.BooleanOptionalAction, default=None,
                   help="link the tracks of a scene into identities (clothing and faces), so a name found on one"
                        " track shows on the others; --no-link-scenes names each track from its own face only"
                        " [default: the config's link_scenes]")
    from facetrack.two_pass import add_arguments as add_two_pass_arguments

    add_two_pass_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (and show tracebacks)")
    add_output_arguments(p)
    return p


def gallery_identifier(args, config, detector, embedder, quiet: bool, source_name: str = ""):
    """Open or enroll the gallery of ``--gallery``; returns an Identifier and the recorder of the Unknowns
    seen (None, None without a gallery; the recorder is None with ``--no-remember-unknowns``)."""
    from facetrack.build import (build_identifier, build_index, build_unknown_recorder, build_unknowns,
                                 open_gallery)

    if not args.gallery:
        if args.gallery_db:
            raise DemoError("--gallery-db needs --gallery PHOTO_DIR")
        return None, None
    spec = Path(args.gallery).expanduser()
    if not spec.exists():
        raise DemoError(f"--gallery: no such file or directory: {args.gallery}")
    if not spec.is_dir() and args.gallery_db:
        raise DemoError("--gallery-db is only for a photo folder; --gallery already names a database")
    store, report = open_gallery(spec, detector, embedder, config, db_path=args.gallery_db, progress=not quiet)
    if report is not None:
        counts = report.counts()
        logger.info("gallery %s: %s", store.path, dict(counts))
        print(f"gallery {store.path}: {len(store.people())} people, {len(store)} embeddings "
              f"({counts.get('enrolled', 0)} enrolled, {counts.get('updated', 0)} updated, "
              f"{counts.get('unchanged', 0)} unchanged, {counts.get('skipped', 0)} skipped)", file=sys.stderr)
    index = build_index(store, config)
    if len(store) == 0:
        logger.warning("the gallery is empty: everyone will be Unknown")
    unknowns, unknown_index = build_unknowns(store, config)
    identifier = build_identifier(index, config, unknown_index)
    if args.no_remember_unknowns:
        return identifier, None
    return identifier, build_unknown_recorder(unknowns, identifier, unknown_index, config, source=source_name)


def make_sinks(args, source) -> list:
    from pipeline.sinks import WindowSink, display_available, make_output_sink

    sinks = []
    try:
        for target in args.output:
            sinks.append(make_output_sink(target, fps=source.fps, live=source.is_live))
        if not args.no_show:
            if display_available():
                sinks.append(WindowSink(f"facetrack: {source.description}"))
            else:
                logger.warning("no display available (DISPLAY/WAYLAND_DISPLAY unset or unreachable): "
                               "not opening a window (--no-show silences this)")
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def check_output_files(args) -> None:
    """Fail now, before minutes of model loading, when a line file cannot be created there (no
    folder, a folder in its place); nothing is created: the files are opened once the parts are
    built, so a failed start leaves no output behind."""
    from pipeline.sink_base import check_writable
    from pipeline.sinks import SinkError

    for what, path in (("events", args.events), ("tracks", args.tracks), ("names", args.names)):
        if path:
            try:
                check_writable(Path(path))
            except SinkError as exc:
                reason = str(exc).removeprefix(f"cannot write {Path(path)}: ")
                raise DemoError(f"cannot write {what} {path}: {reason}") from None


def open_line_writers(args, config):
    """The event writer of ``--events`` and the ``events`` section (MQTT, webhook; or None) and the
    ``--tracks``/``--names`` writers, created now."""
    from pipeline.events import FrameWriters, NamesWriter, TracksWriter

    frame_writers = FrameWriters()     # --tracks and --names: every frame's rows
    try:
        for path, writer in ((args.tracks, TracksWriter), (args.names, NamesWriter)):
            if path:
                frame_writers.writers.append(writer(path))
        return build_event_writer(args.events, config, source=str(args.source)), frame_writers
    except OSError as exc:
        frame_writers.close()
        raise DemoError(str(exc)) from None


def run_demo(args) -> int:
    from facetrack.config import load_config

    if args.max_frames is not None and args.max_frames < 1:
        raise DemoError(f"--max-frames must be >= 1, got {args.max_frames}")
    config = apply_output_arguments(args, load_config(args.config))
    from facetrack.demo_stills import is_still_source, run_stills
    if is_still_source(args.source):      # an image or a folder of images: named per image, without tracking
        return run_stills(args, config)
    if args.link_scenes is not None:
        config["link_scenes"] = args.link_scenes
    if args.render or args.two_pass:
        from facetrack import two_pass

        return two_pass.render(args, config, args.render) if args.render else two_pass.run_two_pass(args, config)

    # Open the source first: a wrong path fails before minutes of model loading.
    from pipeline.events import FrameWriters
    from pipeline.sources import open_source

    source = open_source(args.source, **config["source"])
    event_writer = None
    frame_writers = FrameWriters()
    sinks: list = []
    try:
        logger.info("source %s: %dx%d at %.2f fps%s", source.description, source.width, source.height,
                    source.fps, " (live)" if source.is_live else "")
        check_output_files(args)
        sinks = make_sinks(args, source)     # checked now; a video file is created on its first frame

        from facetrack.build import build_blur, build_models, build_pipeline
        from pipeline.overlay import Overlay
        from pipeline.loop import run

        detector, embedder = build_models(config, models_dir=args.models_dir, device=args.device,
                                          progress=not args.quiet)
        identifier, recorder = gallery_identifier(args, config, detector, embedder, args.quiet,
                                                  str(source.description))
        pipeline = build_pipeline(config, detector, embedder, identifier)
        overlay = Overlay(**config["overlay"])
        blur = build_blur(config, args.blur)
        # Everything is ready: only now are the line files created.
        event_writer, frame_writers = open_line_writers(args, config)
    except BaseException:
        close_outputs(sinks, frame_writers, event_writer, source)
        raise

    summary = run(pipeline, source, sinks, overlay=overlay, event_writer=event_writer,
                  tracks_writer=frame_writers if frame_writers.writers else None, max_frames=args.max_frames,
                  progress=not args.quiet and not source.is_live, recorder=recorder, blur=blur, **config["loop"])
    print_summary(summary, args, unknown_people(identifier))
    return exit_status(summary)


def close_outputs(sinks, frame_writers, event_writer, source) -> None:
    """Close what a start that failed had opened."""
    for sink in sinks:
        sink.close()
    frame_writers.close()
    if event_writer is not None:
        event_writer.close()
    source.close()


def exit_status(summary) -> int:
    """The exit status of a finished run (a write error says which output failed on stderr)."""
    if summary.output_errors:
        more = f" (also: {'; '.join(summary.output_errors[1:])})" if len(summary.output_errors) > 1 else ""
        print(f"error: {summary.output_errors[0]}{more}; the other outputs are complete up to frame "
              f"{summary.frames}", file=sys.stderr)
        return EXIT_WRITE_ERROR
    if summary.stop_reason == "interrupted":
        return 128 + (summary.stop_signal or int(signal.SIGINT))
    return 0


def unknown_people(identifier) -> Optional[str]:
    """A summary line of the run's Unknown tracks grouped into people (gallery.cluster), or None."""
    if identifier is None:
        return None
    from gallery.cluster import cluster_embeddings

    ids, vectors = identifier.unknown_embeddings(include_ended=True)
    if not ids:
        return None
    labels = cluster_embeddings(vectors, similarity_threshold=identifier.similarity_threshold)
    people = int(labels.max()) + 1
    return (f"Unknown: {len(ids)} track{'s' if len(ids) != 1 else ''} of about {people} "
            f"{'person' if people == 1 else 'people'} (clustered at similarity {identifier.similarity_threshold:g})")


def print_summary(summary, args, unknowns: Optional[str] = None) -> None:
    ms = summary.stage_ms()
    stages = ", ".join(f"{k} {v:.1f}" for k, v in ms.items() if v > 0.0)
    from facetrack.text import printable

    people = ", ".join(printable(n) for n in summary.names_seen) if summary.names_seen else "nobody named"
    lines = [
        f"{summary.frames} frames in {summary.seconds:.1f} s: {summary.fps:.1f} FPS"
        + (f" (stopped: {summary.stop_reason})" if summary.stop_reason not in ("", "end of source") else ""),
        f"detector ran on {summary.detection_frames} frames, {summary.faces_embedded} faces embedded",
        f"per frame (ms): {stages}",
        f"{summary.track_ids} tracks, {summary.appearances} appearances; people seen: {people}",
    ]
    if unknowns:
        lines.append(unknowns)
    if summary.source_warning:
        lines.append(f"warning: {summary.source_warning}")
    if summary.dropped_frames or summary.reconnects:
        lines.append(f"live source: {summary.dropped_frames} stale frames dropped, "
                     f"{summary.reconnects} reconnects")
    failed = " ".join(summary.output_errors)
    for target in list(args.output) + [p for p in (args.events, args.tracks, args.names) if p]:
        lines.append(f"incomplete: {target}" if str(target) in failed else f"wrote {target}")
    print("\n".join(lines), file=sys.stderr)


def main(argv: Optional[List[str]] = None, prog: str = "demo.py") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # OpenCV's and FFmpeg's own warnings ("can't open camera by index", "Connection
        # refused") would repeat our one-line errors; -v shows them.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")   # AV_LOG_FATAL
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    from facetrack.config import ConfigError
    from pipeline.sinks import SinkError
    from pipeline.sources import SourceError

    expected = [DemoError, ConfigError, SourceError, SinkError]
    try:
        from gallery.store import GalleryError
        from models.device import DeviceUnavailableError
        from models.embedder import WrongModelError
        from models.weights import WeightsError

        expected += [GalleryError, DeviceUnavailableError, WrongModelError, WeightsError]
    except ImportError:  # pragma: no cover - a broken install is reported when building the parts
        pass
    previous = {}
    if threading_is_main():
        previous = {signum: signal.signal(signum, _raise_stopped) for signum in STOP_SIGNALS}
    try:
        return run_demo(args)
    except tuple(expected) as exc:
        if args.verbose:
            logger.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, FileNotFoundError) as exc:
        # Out-of-range configuration values: the constructors name the parameter.
        if args.verbose:
            logger.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else int(signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main_and_exit(argv: Optional[List[str]] = None, prog: str = "demo.py") -> None:
    """:func:`main`, then leave at once (the entry point of ``demo.py``).

    Every output is closed and flushed when :func:`main` returns; what is
    left is the interpreter tearing down torch and onnxruntime, which takes
    seconds. Exiting without it, with the stop signals ignored, means a
    second Ctrl-C after the summary cannot abort anything.
    """
    code = main(argv, prog)
    if threading_is_main():
        for signum in (signal.SIGINT,) + STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main_and_exit()
