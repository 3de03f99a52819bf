"""``facetrack serve``: the local web page (People, Unknowns, Events, Live) over a gallery.

Examples
--------
facetrack serve --gallery gallery.db                      # http://127.0.0.1:8000/
facetrack serve --gallery photos/ --source webcam --events runs/events.jsonl
FACETRACK_TOKEN=... facetrack serve --gallery gallery.db --host 0.0.0.0

The composition layer of :mod:`web`: it reads the YAML, opens or creates
the gallery, builds the models (on the first upload when nothing needs them
sooner), runs the pipeline of ``--source`` in a background thread for the
Live page and serves :func:`web.app.create_app` with uvicorn. It listens on
127.0.0.1 unless told otherwise, and anything else needs a token.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional

logger = logging.getLogger("facetrack.serve")

#: Exit status for bad input (the same as the demo's).
EXIT_BAD_INPUT = 2
TOKEN_ENV = "FACETRACK_TOKEN"


class ServeError(Exception):
    """Bad input found by the command line itself."""


def build_parser(prog: str = "facetrack serve") -> argparse.ArgumentParser:
    from web.uploads import MAX_UPLOAD_BYTES

    p = argparse.ArgumentParser(prog=prog, description="The local web page of facetrack.")
    p.add_argument("--gallery", required=True,
                   help="a gallery .db file (created when missing) or a photo folder (one subfolder per person, "
                        "enrolled incrementally; uploads are written into it)")
    p.add_argument("--gallery-db", help="with a photo folder: the database to keep it in [default: the cache]")
    p.add_argument("--photos", metavar="DIR",
                   help="with a .db gallery: the folder uploads are written to [default: <db>.photos beside it]")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on [default: 127.0.0.1]")
    p.add_argument("--port", type=int, default=8000, help="port [default: 8000]")
    p.add_argument("--token", help=f"required on every request; needed to listen beyond localhost "
                                   f"[default: ${TOKEN_ENV}]")
    p.add_argument("--source", help="run the pipeline on this source for the Live page (see demo.py --source)")
    p.add_argument("--max-frames", type=int, metavar="N", help="with --source: stop after N frames")
    p.add_argument("--no-remember-unknowns", action="store_true",
                   help="with --source: do not store the Unknown faces seen (see demo.py)")
    p.add_argument("--events", metavar="PATH", help="the events.jsonl of the Events page (written with --source)")
    p.add_argument("--snapshots", metavar="DIR",
                   help="snapshots of the events [default: <events>.snapshots beside the events file]")
    p.add_argument("--hls", metavar="DIR", help="serve an HLS folder a re-stream writes under /hls/")
    p.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_BYTES / 2 ** 20,
                   help="largest photo accepted, in MiB [default: %(default)g]")
    p.add_argument("--config", help="YAML configuration [default: configs/default.yaml]")
    p.add_argument("--models-dir", help="folder with the weights [default: $FACETRACK_MODELS_DIR, then the cache]")
    p.add_argument("--detector", help="detector weights (name or path) [default: from the config]")
    p.add_argument("--embedder", help="embedder weights (name or path) [default: from the config]")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N [default: from the config]")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    return p


class Locked:
    """A model shared by the live pipeline and enrollment: one call at a time (``detect``/``embed``)."""

    def __init__(self, model, lock: threading.Lock) -> None:
        self._model, self._lock = model, lock

    def detect(self, *args, **kw):
        with self._lock:
            return self._model.detect(*args, **kw)

    def embed(self, *args, **kw):
        with self._lock:
            return self._model.embed(*args, **kw)

    def __getattr__(self, name):
        return getattr(self._model, name)


class Models:
    """The detector and embedder, built once on first use (from any thread)."""

    def __init__(self, args, config) -> None:
        self._args, self._config = args, config
        self._lock = threading.Lock()
        self._pair = None

    def get(self):
        from facetrack.build import build_models

        with self._lock:
            if self._pair is None:
                a = self._args
                detector, embedder = build_models(self._config, models_dir=a.models_dir, device=a.device,
                                                  detector_weights=a.detector, embedder_weights=a.embedder,
                                                  progress=False)
                lock = threading.Lock()
                self._pair = Locked(detector, lock), Locked(embedder, lock)
            return self._pair


def gallery_paths(args, config, models: Models) -> tuple:
    """``(database, photo folder)`` of ``--gallery``; a photo folder is enrolled first, a new database created."""
    from facetrack.build import open_gallery
    from gallery.schema import make_private_dir
    from gallery.store import GalleryStore

    spec = Path(args.gallery).expanduser()
    if spec.is_dir():
        if args.photos:
            raise ServeError("--photos is for a .db gallery; with a photo folder, uploads go into that folder")
        store, _ = open_gallery(spec, *models.get(), config, db_path=args.gallery_db, progress=False)
        db = store.path
        store.close()
        return db, spec.resolve()
    if args.gallery_db:
        raise ServeError("--gallery-db is only for a photo folder; --gallery already names a database")
    if spec.suffix != ".db" and not spec.exists():
        raise ServeError(f"--gallery: no such photo folder, and not a .db file: {args.gallery}")
    photos = Path(args.photos).expanduser() if args.photos else spec.with_name(spec.name + ".photos")
    if not spec.exists():
        make_private_dir(spec.parent)
        GalleryStore(spec, models.get()[1].identity).close()
    make_private_dir(photos)
    return spec.resolve(), photos.resolve()


def make_worker(db: Path, config, models: Models):
    """The gallery's thread: the store opened there, the enroller built on first upload (with the
    models' identity checked against the gallery's)."""
    from facetrack.build import build_enroller
    from gallery.store import GalleryStore
    from web.worker import GalleryWorker

    def open_store():
        return GalleryStore(db, create=False)

    def make_enroller():
        detector, embedder = models.get()
        GalleryStore(db, embedder.identity, create=False).close()      # ModelMismatchError when it differs
        return build_enroller(detector, embedder, config)

    return GalleryWorker(open_store, make_enroller)


def unknowns_router(worker, config):
    """The Unknowns page's API, with the ``unknowns`` section's keywords."""
    from facetrack.build import build_unknowns
    from web.unknowns import router

    return router(worker, lambda store: build_unknowns(store, config)[0])


def start_live(args, config, models: Models, events: Optional[Path], snapshots: Optional[Path]):
    """Open ``--source`` and run the pipeline on it in a background thread (a :class:`web.live.LiveRun`).

    The gallery is opened on that thread (its SQLite connection stays there), as the demo opens it:
    the identifier with the persistent Unknowns, and their recorder unless ``--no-remember-unknowns``.
    """
    from facetrack.build import build_pipeline
    from facetrack.demo_cli import gallery_identifier
    from pipeline.events import EventWriter
    from pipeline.loop import run
    from pipeline.overlay import Overlay
    from pipeline.sources import open_source
    from web.live import LiveFrames, LiveRun
    from web.snapshots import Snapshots

    source = open_source(args.source, **config["source"])
    try:
        detector, embedder = models.get()
        event_writer = EventWriter(events) if events is not None else None
    except BaseException:
        source.close()
        raise

    def start(frames):
        identifier, recorder = gallery_identifier(args, config, detector, embedder, True,
                                                  source_name=str(source.description))
        pipeline = build_pipeline(config, detector, embedder, identifier)
        if snapshots is not None:
            pipeline = Snapshots(pipeline, snapshots)
        return run(pipeline, source, [frames], overlay=Overlay(**config["overlay"]), event_writer=event_writer,
                   max_frames=args.max_frames, recorder=recorder, **config["loop"])

    frames = LiveFrames(pace_fps=None if source.is_live else source.fps)
    return LiveRun(start, frames, description=str(source.description)).start()


def serve(args) -> int:
    """Check, compose and serve; returns when the server stops (Ctrl-C)."""
    import uvicorn

    from facetrack.config import load_config
    from web.app import create_app
    from web.security import check_bind

    token = check_bind(args.host, args.token or os.environ.get(TOKEN_ENV) or None)
    if args.max_frames is not None and (args.max_frames < 1 or not args.source):
        raise ServeError("--max-frames needs --source and must be >= 1")
    if args.max_upload_mb <= 0:
        raise ServeError(f"--max-upload-mb must be > 0, got {args.max_upload_mb:g}")
    config = load_config(args.config)
    models = Models(args, config)
    db, photos = gallery_paths(args, config, models)
    events = Path(args.events).expanduser() if args.events else None
    snapshots = Path(args.snapshots).expanduser() if args.snapshots else (
        events.with_name(events.name + ".snapshots") if events is not None else None)
    live = start_live(args, config, models, events, snapshots) if args.source else None
    worker = make_worker(db, config, models)
    app = create_app(worker, photos, extra_routers=[unknowns_router(worker, config)], events_path=events, snapshots_dir=snapshots,
                     live=live, hls_dir=Path(args.hls).expanduser() if args.hls else None, token=token,
                     max_upload_bytes=int(args.max_upload_mb * 2 ** 20))
    print(f"facetrack: serving {db} on http://{args.host}:{args.port}/ (uploads into {photos})"
          + (" with a token" if token else ""), file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning",
                timeout_graceful_shutdown=2)
    return 0


def main(argv: Optional[List[str]] = None, prog: str = "facetrack serve") -> int:
    """``facetrack serve``: returns the exit status (2 for bad input, with one ``error:`` line)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from facetrack.config import ConfigError
    from gallery.store import GalleryError
    from models.weights import WeightsError
    from pipeline.sources import SourceError

    expected = (ServeError, ConfigError, GalleryError, SourceError, WeightsError, ValueError, OSError)
    try:
        return serve(args)
    except KeyboardInterrupt:                   # before the server runs (uvicorn handles its own Ctrl-C)
        return 130
    except expected as exc:
        logger.debug("failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT

if __name__ == "__main__":
    sys.exit(main())
