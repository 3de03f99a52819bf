"""Command line of the gallery: enroll, list, remove, rename, identify, evaluate, calibrate, bench.

Examples
--------
python -m gallery enroll ../shared/data/gallery --db gallery.db --models-dir ../shared/models
python -m gallery list --db gallery.db
python -m gallery identify photo.jpg --db gallery.db --models-dir ../shared/models --json
python -m gallery identify ../shared/data/probe/_group ../shared/data/probe/_unknown --gallery ../shared/data/gallery --format csv
python -m gallery evaluate ../shared/data/probe --db gallery.db --models-dir ../shared/models
python -m gallery calibrate ../shared/models/verify/deepface_master.csv --models-dir ../shared/models --plot cal.png
python -m gallery calibrate ../shared/data/verification_pairs.csv --heights 16 24 32 48 64 112 --json out.json
python -m gallery bench --sizes 1000,100000,1000000

YAML (``--config configs/default.yaml``) is read here only; its sections
``detector``, ``embedder``, ``gallery`` and ``identifier`` hold constructor
keywords (``detector.weights`` / ``embedder.weights`` name the weights).
Command-line flags win over the file.

The file is read by :func:`facetrack.config.load_config`, the strict loader
``demo.py`` uses, so an unknown section or a mistyped key in these sections
is an error naming it, and the models and the gallery index are built by
:mod:`facetrack.build`, as in ``demo.py``. This module is an application
edge like ``demo.py``, not library code: it imports :mod:`pipeline` lazily,
inside the functions that need it, and the library modules of ``gallery/``
(store, index, enroll, identifier, ...) never import :mod:`pipeline`, so the
dependency direction (``pipeline`` composes ``gallery``) is kept.
"""
from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Optional

import numpy as np

logger = logging.getLogger("gallery")

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
#: What Ctrl-C leaves behind, per command (enrollment commits in batches and resumes).
INTERRUPTED_NOTE = {"enroll": "the photos of every finished batch are in the gallery; run the same command "
                              "again to go on where it stopped"}


# -- configuration ------------------------------------------------------------------
#: The sections this command line uses; their keys are checked against the constructors.
CONFIG_SECTIONS = ("detector", "embedder", "gallery", "identifier")


def load_config(path: Optional[str]) -> dict:
    """The YAML file as a dict of sections (empty without a file), checked strictly.

    Raises
    ------
    facetrack.config.ConfigError
        (a ``ValueError``) for a missing or unreadable file, an unknown section,
        or an unknown key in one of :data:`CONFIG_SECTIONS`.
    """
    if not path:
        return {}
    from facetrack.config import load_config as load_strictly

    return load_strictly(path, sections=CONFIG_SECTIONS)


# -- building the parts (with facetrack.build, as demo.py) -----------------------------
def build_models(args, config: dict):
    """The detector and the embedder named by the flags or the config."""
    from facetrack.build import build_models as build

    return build(config, models_dir=args.models_dir, device=args.device or None,
                 detector_weights=args.detector, embedder_weights=args.embedder)


def _identifier_thresholds(args, config: dict) -> tuple[float, float]:
    from gallery.identifier import Identifier
    from facetrack.build import section

    defaults = inspect.signature(Identifier).parameters
    cfg = section(config, "identifier")
    thr = args.threshold if getattr(args, "threshold", None) is not None else cfg.get(
        "similarity_threshold", defaults["similarity_threshold"].default)
    margin = args.margin if getattr(args, "margin", None) is not None else cfg.get(
        "min_margin", defaults["min_margin"].default)
    return float(thr), float(margin)


def _index(store, config: dict, args):
    from facetrack.build import build_index

    score_mode = getattr(args, "score_mode", None)
    return build_index(store, config, **({"score_mode": score_mode} if score_mode else {}))


# -- commands -----------------------------------------------------------------------
def cmd_enroll(args, config) -> int:
    from gallery.store import GalleryStore
    from facetrack.build import build_enroller

    detector, embedder = build_models(args, config)
    enroller = build_enroller(detector, embedder, config)
    with GalleryStore(args.db, embedder.identity, timeout=args.lock_timeout) as store:
        report = enroller.enroll_folder(args.photo_dir, store, sync=args.sync, progress=not args.quiet)
        print(report.table())
        people = store.people()
        print(f"\ngallery {args.db}: {len(people)} people, {len(store)} embeddings")
    suggest_display_names([p.name for p in people], args)
    return 0


def suggest_display_names(names, args) -> None:
    """After enrolling: a hint on stderr when people are named like folders (``lin_manuel_miranda``)."""
    from gallery.person_names import DISPLAY_NAME_FILE, display_name_guess, looks_like_folder_name
    from facetrack.text import printable

    folder_like = [n for n in names if looks_like_folder_name(n)]
    if not folder_like:
        return
    first = folder_like[0]
    shown = ", ".join(printable(n) for n in folder_like[:3]) + (", ..." if len(folder_like) > 3 else "")
    print(f"hint: {len(folder_like)} of {len(names)} names look like folder names ({shown}). Give them display "
          f"names with: {args.prog} rename {printable(first)} \"{printable(display_name_guess(first))}\" "
          f"--db {args.db}; or put a {DISPLAY_NAME_FILE} with the display name in a person's photo folder "
          f"before enrolling it.", file=sys.stderr)


def cmd_list(args, config) -> int:
    from gallery.store import GalleryStore

    with GalleryStore(args.db, create=False, timeout=args.lock_timeout) as store:
        people = store.people()
        if args.json:
            print(json.dumps({"model": store.model.__dict__,
                              "people": [{"name": p.name, "embeddings": p.embeddings} for p in people]}, indent=2))
            return 0
        m = store.model
        print(f"gallery {args.db}: model {m.name} (dim {m.dim}, sha256 {m.sha256[:12]})")
        from facetrack.text import printable

        names = [printable(p.name) for p in people]
        width = max([len("person")] + [len(n) for n in names])
        print(f"{'person':{width}s} embeddings")
        for name, p in zip(names, people):
            print(f"{name:{width}s} {p.embeddings:10d}")
        print(f"{len(people)} people, {sum(p.embeddings for p in people)} embeddings")
    return 0


def cmd_remove(args, config) -> int:
    from gallery.store import GalleryStore

    with GalleryStore(args.db, create=False, timeout=args.lock_timeout) as store:
        n = store.remove_person(args.name)
    print(f"removed {args.name!r} and {n} embeddings")
    return 0


def cmd_rename(args, config) -> int:
    from gallery.store import GalleryStore

    with GalleryStore(args.db, create=False, timeout=args.lock_timeout) as store:
        store.rename_person(args.old, args.new)
    print(f"renamed {args.old!r} to {args.new!r}")
    return 0


def _open_for_matching(args, config):
    from gallery.store import GalleryStore

    detector, embedder = build_models(args, config)
    store = GalleryStore(args.db, embedder.identity, create=False, timeout=args.lock_timeout)
    try:
        index = _index(store, config, args)
    finally:
        store.close()
    return detector, embedder, index


def _identify_gallery_spec(args) -> Path:
    """``--gallery PHOTO_DIR|DB`` (or ``--db``), checked before any model is loaded."""
    if args.gallery and args.db:
        raise ValueError("give --gallery or --db, not both")
    if not (args.gallery or args.db):
        raise ValueError("identify needs --gallery PHOTO_DIR|DB (or --db DB)")
    spec = Path(args.gallery or args.db).expanduser()
    if not spec.exists():
        raise ValueError(f"--gallery: no such file or directory: {args.gallery or args.db}")
    if args.gallery_db and not spec.is_dir():
        raise ValueError("--gallery-db is only for a photo folder; --gallery already names a database")
    return spec


def _identify_gallery(args, config, spec: Path, detector, embedder):
    """The store of ``spec``, open; enrolment of a photo folder is reported on stderr."""
    from facetrack.build import enrollment_summary, open_gallery

    store, report = open_gallery(spec, detector, embedder, config, db_path=args.gallery_db,
                                 progress=not args.quiet, timeout=args.lock_timeout)
    if report is not None:
        print(enrollment_summary(store, report), file=sys.stderr)
    return store


def cmd_identify(args, config) -> int:
    """Name every face of every photo (files and folders); the models load once."""
    from facetrack.build import build_still_namer
    from facetrack.identify import format_results, name_images
    from pipeline.stills import image_files

    paths = image_files(args.images, recursive=args.recursive)    # bad paths fail before the models load
    fmt = "json" if args.json else args.format
    spec = _identify_gallery_spec(args)
    detector, embedder = build_models(args, config)
    store = _identify_gallery(args, config, spec, detector, embedder)
    try:
        index = _index(store, config, args)
    finally:
        store.close()
    if index.empty:
        print("warning: the gallery is empty: every face will be Unknown", file=sys.stderr)
    namer = build_still_namer(config, detector, embedder, index, similarity_threshold=args.threshold,
                              min_margin=args.margin)
    results, errors = name_images(namer, paths, progress=not args.quiet and len(paths) > 1)
    text = format_results(results, errors, fmt, namer)
    print(text, end="" if text.endswith("\n") else "\n")
    for path, reason in errors:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    return 1 if errors else 0


def cmd_evaluate(args, config) -> int:
    from gallery.photos import evaluate_probes

    detector, embedder, index = _open_for_matching(args, config)
    thr, margin = _identifier_thresholds(args, config)
    result = evaluate_probes(args.probe_dir, detector, embedder, index, similarity_threshold=thr,
                             min_margin=margin, progress=not args.quiet)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.table())
    return 0


def cmd_evidence(args, config) -> int:
    """``evidence PROBE_DIR --db G``: the evidence rule's table by face height (:mod:`gallery.evidence_fit`)."""
    from gallery import evidence_fit

    detector, embedder, index = _open_for_matching(args, config)
    probes = evidence_fit.probe_faces(Path(args.probe_dir), index.people, detector)
    if not probes:
        raise ValueError(f"no probe photo of an enrolled person under {args.probe_dir}")
    rows = evidence_fit.measure(probes, index, detector, embedder, heights=args.heights, progress=not args.quiet,
                                jpeg_quality=args.jpeg_quality or None, blur_sigma=args.blur_sigma)
    print(evidence_fit.format_rows(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(evidence_fit.to_dict(rows), indent=1) + "\n")
    return 0


def _calibrate_degraded(args, config, src: Path) -> int:
    """``calibrate --heights``: the degraded-pairs protocol (:mod:`gallery.degraded`) on a pairs CSV."""
    from gallery import calibrate as cal
    from gallery.degraded import run_degraded_pairs
    from gallery.degraded_stats import DEFAULT_FARS, format_degraded_table, plot_degraded

    if not src.is_file():
        raise ValueError(f"--heights needs a pairs CSV file, got {src}")
    pairs = cal.read_pairs_csv(src)
    detector, embedder = build_models(args, config)
    fars = sorted(set(DEFAULT_FARS) | {args.target_far}, reverse=True)
    result = run_degraded_pairs(
        pairs, detector, embedder, heights=args.heights, fars=fars, progress=not args.quiet,
        jpeg_quality=args.jpeg_quality or None, blur_sigma=args.blur_sigma,
        settings={"pairs_file": str(src), "detector": detector.path.name, "embedder": embedder.identity.name,
                  "detector_input_size": detector.input_size,
                  "detector_confidence_threshold": detector.confidence_threshold})
    if result.left_out:
        print(f"warning: {len(result.left_out)} of {len(pairs)} pairs left out (a full-resolution photo has no"
              " usable face)", file=sys.stderr)
    print(f"degraded pairs: {embedder.identity.name} with {detector.path.name} on {src} "
          f"({len(pairs) - len(result.left_out)} pairs, JPEG quality {args.jpeg_quality or 'none'}, "
          f"blur sigma {args.blur_sigma:g} px)")
    print(format_degraded_table(result))
    if args.json:
        Path(args.json).write_text(result.to_json())
        print(f"\nJSON written to {args.json}")
    if args.plot:
        plot_degraded(result, args.plot, title=f"{embedder.identity.name} on degraded {src.name}")
        print(f"plot written to {args.plot}")
    return 0


def cmd_calibrate(args, config) -> int:
    from tqdm import tqdm

    from gallery import calibrate as cal
    from gallery.enroll import scan_photo_dir
    from gallery.photos import default_image_reader, largest_face_embedding

    src = Path(args.source)
    if args.heights:
        return _calibrate_degraded(args, config, src)
    if args.json:
        raise ValueError("--json is written by the degraded-pairs protocol only (give --heights)")
    if src.is_dir():
        items = scan_photo_dir(src)
        paths = [p for _, p in items]
        labels = [person for person, _ in items]
        pairs = None
    elif src.is_file():
        pairs = cal.read_pairs_csv(src)
        paths = sorted({p for a, b, _ in pairs for p in (a, b)})
    else:
        raise ValueError(f"{src} is neither a labelled folder nor a pairs CSV file")
    detector, embedder = build_models(args, config)
    read = default_image_reader()
    emb: dict = {}
    for p in tqdm(paths, desc="embedding", unit="photo", disable=args.quiet):
        try:
            e = largest_face_embedding(read(p), detector, embedder)
        except ValueError as exc:
            logger.warning("skipping %s: %s", p, exc)
            e = None
        if e is None:
            print(f"warning: no usable face in {p}; its pairs are left out", file=sys.stderr)
        emb[p] = e
    if pairs is None:
        keep = [k for k, p in enumerate(paths) if emb[p] is not None]
        i, j, same = cal.labelled_pairs([labels[k] for k in keep])
        vecs = np.stack([emb[paths[k]] for k in keep]) if keep else np.zeros((0, 1))
        scores = cal.pair_scores(vecs[i], vecs[j]) if len(i) else np.zeros(0)
    else:
        usable = [(a, b, s) for a, b, s in pairs if emb[a] is not None and emb[b] is not None]
        if len(usable) < len(pairs):
            print(f"warning: {len(pairs) - len(usable)} of {len(pairs)} pairs left out (no face)", file=sys.stderr)
        same = np.array([s for _, _, s in usable], dtype=bool)
        scores = cal.pair_scores(np.stack([emb[a] for a, _, _ in usable]), np.stack([emb[b] for _, b, _ in usable])) \
            if usable else np.zeros(0)
    report = cal.threshold_report(scores, same, target_far=args.target_far, chosen=args.choose)
    print(f"calibration of {embedder.identity.name} on {src} ({len(scores)} pairs)")
    print(cal.format_report(report))
    if args.plot:
        cal.plot_distributions(scores, same, report, args.plot, title=f"{embedder.identity.name} on {src.name}")
        print(f"\nplot written to {args.plot}")
    print("\n# YAML for configs/default.yaml")
    print(cal.yaml_snippet(report, model_name=embedder.identity.name), end="")
    return 0


def cmd_bench(args, config) -> int:
    from gallery.bench import benchmark_query, format_bench

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = benchmark_query(sizes, batch=args.batch, repeats=args.repeats, score_mode=args.score_mode or "mean")
    print(format_bench(results))
    return 0


# -- argument parsing ------------------------------------------------------------------
def build_parser(prog: str = "python -m gallery") -> argparse.ArgumentParser:
    # The default weights are demo.py's (the embedder role "arcface": w600k_r50 when present, else edgeface_xs).
    from facetrack.build import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
    from facetrack.identify import FORMATS

    parser = argparse.ArgumentParser(prog=prog, description="Face gallery: enrollment and naming.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    def models_flags(p):
        p.add_argument("--config", help="YAML config with detector/embedder/gallery/identifier sections")
        p.add_argument("--detector", help=f"detector weights: registered name or path (default {DEFAULT_DETECTOR})")
        p.add_argument("--embedder", help=f"embedder weights: registered name or path (default {DEFAULT_EMBEDDER})")
        p.add_argument("--models-dir", help="folder to look for weights in (e.g. ../shared/models)")
        p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    def db_flag(p):
        p.add_argument("--db", required=True, help="the gallery file (SQLite)")
        p.add_argument("--lock-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="how long to wait for another process's lock on the gallery [default: 10]")

    p = sub.add_parser("enroll", help="enroll a photo folder (one subfolder per person, or Person_Name_1.jpg)",
                       description="Enroll a photo folder into a gallery: one subfolder per person (its name, "
                                   "or the first line of a name.txt in it, is the person's name), or flat "
                                   "Person_Name_1.jpg files. Only new or changed photos are embedded.")
    p.add_argument("photo_dir", help="the photo folder: PHOTO_DIR/<person>/*.jpg or PHOTO_DIR/Person_Name_1.jpg")
    db_flag(p)
    models_flags(p)
    p.add_argument("--sync", action="store_true", help="also remove embeddings whose photos are gone")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("list", help="people in the gallery", description="The people in a gallery and "
                                                                          "how many embeddings each has.")
    db_flag(p)
    p.add_argument("--json", action="store_true", help="print JSON (the model and every person) instead of a table")
    p.set_defaults(func=cmd_list, config=None)

    p = sub.add_parser("remove", help="remove a person and their embeddings",
                       description="Remove a person and all their embeddings from a gallery.")
    p.add_argument("name", help="the person's name, as the list command shows it")
    db_flag(p)
    p.set_defaults(func=cmd_remove, config=None)

    p = sub.add_parser("rename", help="rename a person", description="Rename a person of a gallery (for "
                       "example a folder name to a display name); the embeddings are kept.")
    p.add_argument("old", help="the current name, as the list command shows it")
    p.add_argument("new", help="the new name (quote it when it has spaces; no / or control characters)")
    db_flag(p)
    p.set_defaults(func=cmd_rename, config=None)

    p = sub.add_parser("identify", help="name every face of photos (files and folders), without tracking",
                       description="Name every face of each photo: one observation per face, named when its "
                                   "cosine similarity to the best person reaches the identifier's threshold and "
                                   "beats the runner-up by its margin. The models load once for all photos.")
    p.add_argument("images", nargs="+", metavar="IMAGE|FOLDER",
                   help="image files and folders of images (a folder's images in name order)")
    p.add_argument("--gallery", help="a photo folder (one subfolder per person; enrolled incrementally into a "
                                     "cached gallery database) or a gallery .db file, as for demo.py")
    p.add_argument("--gallery-db", help="where to keep the database enrolled from a photo folder "
                                        "[default: ~/.cache/facetrack/galleries/]")
    p.add_argument("--db", help="a gallery .db file (the same as --gallery DB)")
    p.add_argument("--lock-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for another process's lock on the gallery [default: 10]")
    p.add_argument("--recursive", "-r", action="store_true", help="also search the folders' sub-folders")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (for people), csv (one row per face; empty name = Unknown) or json [default: table]")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    models_flags(p)
    p.add_argument("--threshold", type=float, help="cosine similarity threshold (default: config or identifier)")
    p.add_argument("--margin", type=float, help="minimum margin over the runner-up (default: config or identifier)")
    p.add_argument("--score-mode", choices=["max", "mean", "blend"], help="per-person score rule")
    p.set_defaults(func=cmd_identify)

    for name, func, helptext in (("evaluate", cmd_evaluate, "identification accuracy on a labelled probe folder"),):
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        p.add_argument("probe_dir", help="one subfolder per person (other photos than the gallery's)")
        db_flag(p)
        models_flags(p)
        p.add_argument("--threshold", type=float, help="cosine similarity threshold (default: config or identifier)")
        p.add_argument("--margin", type=float, help="minimum margin over the runner-up")
        p.add_argument("--score-mode", choices=["max", "mean", "blend"],
                       help="per-person score: the best embedding, the mean template, or a blend of the two "
                            "[default: from the config]")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(func=func)

    p = sub.add_parser("calibrate", help="thresholds from labelled photos or a pairs CSV",
                       description="Similarity thresholds from labelled photos or a pairs CSV: the same-person "
                                   "and different-person distributions, thresholds by three rules, and a YAML "
                                   "line for configs/default.yaml.")
    p.add_argument("source", help="labelled folder (one subfolder per person) or CSV of image_a,image_b,same")
    models_flags(p)
    p.add_argument("--plot", help="write a PNG of both distributions with the thresholds (with --heights: one"
                                  " panel per height and TAR at FAR against height)")
    p.add_argument("--target-far", type=float, default=0.001,
                   help="false accept rate for the FAR rule [default: 0.001]")
    p.add_argument("--choose", choices=["stump", "two_sigma", "far"], default="stump",
                   help="the threshold written to the YAML snippet: decision stump, 2-sigma rule or the FAR "
                        "rule [default: stump]")
    p.add_argument("--heights", type=int, nargs="+", metavar="PX",
                   help="degraded-pairs protocol: render side b of each pair with its face this high (e.g. 16 24 32"
                        " 48 64 112) and report the distributions per height (gallery.degraded)")
    p.add_argument("--jpeg-quality", type=int, default=75,
                   help="with --heights: JPEG quality of the compression step (0 = none)")
    p.add_argument("--blur-sigma", type=float, default=0.0,
                   help="with --heights: Gaussian blur (px of the small face's photo) before compression")
    p.add_argument("--json", help="with --heights: write the statistics and the per-pair rows to this JSON file")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("evidence", help="the identifier's evidence table: probe faces degraded to each height"
                                        " against the gallery (gallery.evidence_fit)")
    p.add_argument("probe_dir", help="one subfolder per enrolled person, photos not in the gallery")
    db_flag(p)
    models_flags(p)
    p.add_argument("--heights", type=int, nargs="+", default=[16, 24, 32, 48, 64, 112], metavar="PX",
                   help="face heights to render (default: 16 24 32 48 64 112)")
    p.add_argument("--jpeg-quality", type=int, default=75, help="JPEG quality of the compression step (0 = none)")
    p.add_argument("--blur-sigma", type=float, default=0.0, help="Gaussian blur before compression (px)")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.set_defaults(func=cmd_evidence)

    p = sub.add_parser("bench", help="query speed against random galleries")
    p.add_argument("--sizes", default="1000,100000,1000000",
                   help="gallery sizes (embeddings), comma-separated [default: 1000,100000,1000000]")
    p.add_argument("--batch", type=int, default=16, help="faces per query [default: 16]")
    p.add_argument("--repeats", type=int, default=5, help="timed queries per size [default: 5]")
    p.add_argument("--score-mode", choices=["max", "mean", "blend"],
                   help="per-person score rule [default: mean]")
    p.set_defaults(func=cmd_bench, config=None)
    return parser


def main(argv=None, prog: str = "python -m gallery") -> int:
    args = build_parser(prog).parse_args(argv)
    args.prog = prog
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from gallery.store import GalleryError
    from models.weights import WeightsError

    try:
        config = load_config(getattr(args, "config", None))
        return args.func(args, config)
    except KeyboardInterrupt:
        print("\ninterrupted: " + INTERRUPTED_NOTE.get(args.command, "the gallery is as it was before"),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (GalleryError, WeightsError, ValueError, FileNotFoundError) as exc:
        if args.verbose:
            logger.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
