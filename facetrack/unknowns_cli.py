"""Command line of the Unknown people the camera saw: list, name, merge, split, dismiss, "this is not X".

Examples
--------
python demo.py --source clip.mp4 --gallery gallery.db --no-show       # remembers the Unknowns it sees
python -m gallery unknowns --db gallery.db list --sheet unknowns.jpg  # clusters, counts, first/last seen
python -m gallery unknowns --db gallery.db name 17 "Ada Lovelace"     # enroll Unknown #17 as Ada Lovelace
python -m gallery unknowns --db gallery.db merge 17 21 30
python -m gallery unknowns --db gallery.db split 17 [--each]
python -m gallery unknowns --db gallery.db dismiss 21                 # delete its faces and embeddings
python -m gallery unknowns --db gallery.db appearances --named        # named appearances, for not-person
python -m gallery unknowns --db gallery.db not-person 5 "Ada Lovelace" --appearance
python -m gallery unknowns --db gallery.db not-person 3 "Ada Lovelace" --track --source cam.mp4   # track #3
python -m gallery unknowns calibrate ../shared/data/video/talking_heads/*.mp4   # measure join_similarity

``--db`` is a gallery file (a photo folder's gallery is found in the cache
folder of :func:`facetrack.build.default_gallery_db`). The ``unknowns``
section of ``--config`` (default ``configs/default.yaml``) gives the
clustering and retention keywords. Every change is one transaction: an error
or Ctrl-C leaves the gallery as it was. The library behind it is
:mod:`gallery.unknowns`.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional

logger = logging.getLogger("unknowns")

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
#: Contact sheet: side of one face cell and height of its caption, in pixels.
SHEET_CELL = 112
SHEET_CAPTION = 22
SHEET_COLUMNS = 8


def build_parser(prog: str = "facetrack unknowns") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description="The Unknown people remembered in a gallery: list, name, merge, "
                                            "split, dismiss, and 'this is not X'.")
    p.add_argument("--db", help="the gallery (every command but calibrate): a .db file, or the photo folder "
                               "whose cached gallery demo.py uses")
    p.add_argument("--config", help="YAML configuration [default: configs/default.yaml]")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="clusters with counts and first/last seen; writes a contact sheet")
    ls.add_argument("--sheet", metavar="JPEG", help="write a contact sheet of the best face of each cluster")
    app = sub.add_parser("appearances", help="the stored appearances (ids for not-person)")
    app.add_argument("cluster", nargs="?", type=int, help="only this cluster's")
    app.add_argument("--named", action="store_true", help="the named appearances (the identifier gave a name)")
    nm = sub.add_parser("name", help="enroll a cluster's appearances as a new or existing person")
    nm.add_argument("cluster", type=int, help="the Unknown cluster id (the N of Unknown #N)")
    nm.add_argument("person", help="the display name to enroll it as (an existing person gains the faces)")
    mg = sub.add_parser("merge", help="merge clusters into the first one")
    mg.add_argument("clusters", type=int, nargs="+", help="cluster ids; the others join the first")
    sp = sub.add_parser("split", help="re-cluster a cluster more strictly (or one cluster per appearance)")
    sp.add_argument("cluster", type=int, help="the cluster id to split")
    sp.add_argument("--each", action="store_true", help="one cluster per appearance")
    ds = sub.add_parser("dismiss", help="delete a cluster's appearances, crops and embeddings")
    ds.add_argument("cluster", type=int, help="the cluster id whose data is deleted")
    ng = sub.add_parser("not-person", help="'this is not PERSON': a negative example the identifier respects")
    ng.add_argument("id", type=int, help="a cluster id, an appearance id with --appearance, a track id with --track")
    ng.add_argument("person", help="the enrolled person this face is not")
    kind = ng.add_mutually_exclusive_group()
    kind.add_argument("--appearance", action="store_true", help="ID is an appearance id (see appearances --named)")
    kind.add_argument("--track", action="store_true",
                      help="ID is the track id shown on the overlay (its latest stored appearance; --source narrows)")
    ng.add_argument("--source", help="with --track: the source it was seen on")
    sub.add_parser("prune", help="apply the retention (days, count) now")
    cal = sub.add_parser("calibrate", help="measure join_similarity: means of SEGMENT frames of videos of one "
                                           "person each, same within a video, different across")
    cal.add_argument("videos", nargs="+", help="two or more videos, one person each")
    cal.add_argument("--segment", type=int, default=15, help="frames per mean embedding [default: 15]")
    cal.add_argument("--models-dir", help="folder with the weights [default: $FACETRACK_MODELS_DIR]")
    return p


def gallery_path(spec: str) -> Path:
    """The gallery file of ``--db``: the file itself, or the one cached gallery of a photo folder."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--db: no such file or folder: {spec}")
    if path.is_file():
        return path
    from facetrack.build import default_gallery_db

    stem = default_gallery_db(path, "MODEL").name[:-len("MODEL.db")]
    found = sorted(default_gallery_db(path, "MODEL").parent.glob(f"{stem}*.db"))
    if len(found) != 1:
        raise FileNotFoundError(f"--db {spec}: {'no gallery' if not found else 'several galleries'} enrolled "
                                f"from this folder in the cache; give the .db file")
    return found[0]


def when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def contact_sheet(unknowns, clusters, path: Path) -> None:
    """A JPEG grid of each cluster's best crop with ``#id (count)`` below, written atomically with mode 0600."""
    import cv2
    import numpy as np

    cols = max(1, min(SHEET_COLUMNS, len(clusters)))
    rows = max(1, -(-len(clusters) // cols))
    sheet = np.full((rows * (SHEET_CELL + SHEET_CAPTION), cols * SHEET_CELL, 3), 32, np.uint8)
    for k, cluster in enumerate(clusters):
        y, x = (k // cols) * (SHEET_CELL + SHEET_CAPTION), (k % cols) * SHEET_CELL
        thumbs = unknowns.thumbnails(cluster.cluster_id, limit=1)
        face = cv2.imdecode(np.frombuffer(thumbs[0], np.uint8), cv2.IMREAD_COLOR) if thumbs else None
        if face is not None:
            scale = SHEET_CELL / max(face.shape[:2])
            face = cv2.resize(face, (max(1, int(face.shape[1] * scale)), max(1, int(face.shape[0] * scale))))
            sheet[y:y + face.shape[0], x:x + face.shape[1]] = face
        cv2.putText(sheet, f"#{cluster.cluster_id} ({cluster.appearances})", (x + 4, y + SHEET_CELL + 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError(f"cannot encode the contact sheet {path}")
    write_private(path, buf.tobytes())


def write_private(path: Path, data: bytes) -> None:
    """:func:`models.io.write_private`, with a clear error when the folder is missing."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    from models.io import write_private as write

    write(path, data)


def cmd_list(unknowns, args) -> int:
    from facetrack.text import printable

    clusters = unknowns.clusters()
    for c in clusters:
        print(f"{c.label:>14}  {c.appearances:4d} appearance{'s' if c.appearances != 1 else ' '}  "
              f"first {when(c.first_seen)}  last {when(c.last_seen)}  {printable(', '.join(c.sources))}")
    print(f"{len(clusters)} Unknown cluster{'s' if len(clusters) != 1 else ''}", file=sys.stderr)
    if args.sheet:
        contact_sheet(unknowns, clusters, Path(args.sheet))
        print(f"wrote {args.sheet}", file=sys.stderr)
    return 0


def cmd_appearances(unknowns, args) -> int:
    from facetrack.text import printable

    for a in unknowns.appearances(args.cluster, named=args.named):
        who = printable(a.named_as) if a.named_as else f"Unknown #{a.cluster_id}"
        print(f"{a.appearance_id:6d}  {who}  track {a.track_id}  {a.observations} faces ~{a.face_height:.0f} px  "
              f"{when(a.first_time)} - {when(a.last_time)}  {printable(a.source)}")
    return 0


def run_command(unknowns, args) -> int:
    """One change (or listing); prints what it did."""
    from facetrack.text import printable

    if args.command == "list":
        return cmd_list(unknowns, args)
    if args.command == "appearances":
        return cmd_appearances(unknowns, args)
    if args.command == "name":
        n = unknowns.name(args.cluster, args.person)
        print(f"Unknown #{args.cluster} is now {printable(args.person)} ({n} embeddings enrolled)")
    elif args.command == "merge":
        kept = unknowns.merge(args.clusters)
        print(f"merged {', '.join(f'#{c}' for c in args.clusters[1:])} into Unknown #{kept}")
    elif args.command == "split":
        ids = unknowns.split(args.cluster, each=args.each)
        print(f"Unknown #{args.cluster} is now {', '.join(f'#{c}' for c in ids)}")
    elif args.command == "dismiss":
        n = unknowns.dismiss(args.cluster)
        print(f"dismissed Unknown #{args.cluster} ({n} appearances deleted)")
    elif args.command == "not-person":
        if args.track:
            key = {"appearance_id": unknowns.appearance_of_track(args.id, args.source)}
        else:
            key = {"appearance_id" if args.appearance else "cluster_id": args.id}
        n = unknowns.not_person(args.person, **key)
        print(f"{n} negative example{'s' if n != 1 else ''} of {printable(args.person)} stored")
    elif args.command == "prune":
        print(f"{unknowns.prune()} appearances deleted by the retention")
    return 0


def segment_means(detector, embedder, video: str, segment: int):
    """``(K, D)`` means of ``segment`` consecutive embeddings of the most confident face of each frame."""
    import numpy as np

    from pipeline.sources import open_source
    from tracker.vectors import l2_normalize

    source, vectors = open_source(video), []
    try:
        while (frame := source.read()) is not None:
            faces = detector.detect(frame.image)
            if len(faces):
                vectors.append(embedder.embed(frame.image, faces[np.array([int(np.argmax(faces.confidence))])])[0])
    finally:
        source.close()
    k = len(vectors) // segment
    return l2_normalize(np.asarray(vectors[:k * segment], np.float64).reshape(k, segment, -1).mean(axis=1))


def cmd_calibrate(args, config) -> int:
    """The threshold report (:mod:`gallery.calibrate`) of track-like means: what ``join_similarity`` rests on."""
    import numpy as np

    from facetrack.build import build_models
    from gallery.calibrate import format_report, threshold_report

    if len(args.videos) < 2 or args.segment < 1:
        raise ValueError("calibrate needs two or more videos (one person each) and --segment >= 1")
    detector, embedder = build_models(config, models_dir=args.models_dir, progress=False)
    means = [segment_means(detector, embedder, v, args.segment) for v in args.videos]
    x = np.concatenate(means)
    person = np.concatenate([np.full(len(m), k) for k, m in enumerate(means)])
    i, j = np.triu_indices(len(x), 1)
    scores, same = np.sum(x[i] * x[j], axis=1), person[i] == person[j]
    if same.all() or not same.any():
        raise ValueError("too few frames with a face: need two or more segments per video")
    print(f"{len(x)} means of {args.segment} frames from {len(means)} videos; same min {scores[same].min():.3f}, "
          f"different max {scores[~same].max():.3f}")
    print(format_report(threshold_report(scores, same)))
    return 0


def main(argv: Optional[List[str]] = None, prog: str = "facetrack unknowns") -> int:
    """``facetrack unknowns ...`` (and ``python -m gallery unknowns ...``); returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from facetrack.build import build_unknowns
    from facetrack.config import load_config
    from gallery.store import GalleryError, GalleryStore
    from models.weights import WeightsError

    try:
        if args.command == "calibrate":
            return cmd_calibrate(args, load_config(args.config, sections=("unknowns", "detector", "embedder")))
        if not args.db:
            raise ValueError(f"unknowns {args.command} needs --db GALLERY")
        config = load_config(args.config, sections=("unknowns",))
        with GalleryStore(gallery_path(args.db), create=False) as store:
            return run_command(build_unknowns(store, config)[0], args)
    except (GalleryError, WeightsError, ValueError, FileNotFoundError, KeyboardInterrupt) as exc:
        stopped = isinstance(exc, KeyboardInterrupt)     # every change is one transaction: nothing half-done
        logger.debug("failed", exc_info=True)            # the traceback with -v
        print("\ninterrupted: the gallery is as it was before" if stopped else f"error: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED if stopped else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
