"""``demo.py --source IMAGE|FOLDER``: every image named on its own, without tracking.

A track needs ``n_init`` hits before it is shown, so a photo run through the
tracking pipeline shows no face; an image, or a folder of unrelated images,
is named per image instead (:mod:`pipeline.stills`, the identifier's
threshold and margin on one observation). ``--output`` takes an image file
(``.jpg``, ``.png``, ...) for one image, or a folder for a folder of images
(each annotated image under its own file name); the files are written
atomically, owner-only. The faces are printed as the table of
``python -m gallery identify``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List

from pipeline.stills import is_still_source  # noqa: F401  (re-exported: demo_cli asks it which run to do)

#: What a still-image run refuses, and what to use instead.
PER_TRACK_OUTPUTS = {"events": "--events", "tracks": "--tracks", "names": "--names"}


def output_targets(args, source: Path) -> List[Path]:
    """The ``--output`` files (one image) or folders (a folder of images), checked before any model loads.

    Raises
    ------
    ValueError
        An output that is not an image file / folder, would overwrite the
        source, or lies in a missing folder; or a per-track output.
    """
    from pipeline.sources import IMAGE_EXTENSIONS

    for key, flag in PER_TRACK_OUTPUTS.items():
        if getattr(args, key, None):
            raise ValueError(f"{flag} describes tracks over time; an image source is named per image "
                             "(for a CSV or JSON of the faces: python -m gallery identify --format csv|json)")
    targets = []
    for text in args.output:
        target = Path(text).expanduser()
        if "://" in text or target.resolve() == source.resolve():
            raise ValueError(f"--output {text}: an image source is written as images, not to "
                             f"{'a stream' if '://' in text else 'the source itself'}")
        is_image = target.suffix.lower() in IMAGE_EXTENSIONS
        if source.is_dir() and (target.suffix or (target.exists() and not target.is_dir())):
            raise ValueError(f"--output {text}: a folder of images is written to a folder (one annotated image "
                             "per source image), not to a file")
        if not source.is_dir() and not is_image:
            raise ValueError(f"--output {text}: an image source is written as an image "
                             f"({', '.join(IMAGE_EXTENSIONS)}), not {target.suffix or 'a file without extension'}")
        if not source.is_dir() and not target.parent.is_dir():
            raise ValueError(f"--output {text}: the folder {target.parent} does not exist")
        targets.append(target)
    return targets


def run_stills(args, config) -> int:
    """Name every face of ``args.source`` (an image or a folder of images); the exit status."""
    from facetrack.build import build_models, build_still_namer, section
    from facetrack.demo_cli import EXIT_WRITE_ERROR, gallery_identifier
    from facetrack.identify import format_table, named_images
    from pipeline.image_file import write_image
    from pipeline.overlay import Overlay
    from pipeline.stills import StillNamer, image_files

    source = Path(args.source).expanduser()
    paths = image_files([source])[: args.max_frames]        # an empty folder: "no images in ..."
    targets = output_targets(args, source)
    detector, embedder = build_models(config, models_dir=args.models_dir, device=args.device, progress=not args.quiet)
    identifier, _ = gallery_identifier(args, config, detector, embedder, args.quiet)   # photos: nothing remembered
    namer = (build_still_namer(config, detector, embedder) if identifier is None
             else StillNamer.from_identifier(detector, embedder, identifier))
    overlay = Overlay(**section(config, "overlay"))
    if source.is_dir():
        from gallery.schema import make_private_dir

        for folder in targets:
            make_private_dir(folder)
    results, errors = [], []
    for path, image, outcome in named_images(namer, paths, progress=not args.quiet and len(paths) > 1):
        if image is None:
            errors.append((path, outcome))
            continue
        results.append(outcome)
        for target in targets:
            out = target / Path(path).name if source.is_dir() else target
            try:
                write_image(out, overlay.annotate(image.copy(), outcome))
            except OSError as exc:
                print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
                return EXIT_WRITE_ERROR
    print(format_table(results, errors, namer))
    for path, reason in errors:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    for target in targets:
        print(f"wrote {target}", file=sys.stderr)
    return 0
