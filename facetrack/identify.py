"""Naming the faces of many photos in one call: the core of the ``identify`` commands.

The models are loaded once by the caller; :func:`name_images` runs a
:class:`pipeline.stills.StillNamer` over every image, and :func:`format_results`
writes what it found as a table (for people), CSV or JSON (for programs)::

    namer = build_still_namer(config, detector, embedder, build_index(store, config))
    results, errors = name_images(namer, image_files(["photos/", "x.jpg"]))
    print(format_results(results, errors, "table", namer))

An image that cannot be read is an error of its own (``errors``); the others
are named all the same.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from facetrack.text import printable

#: What :func:`format_results` writes.
FORMATS = ("table", "csv", "json")
#: Longest image path shown in the table (longer ones keep their end).
MAX_PATH_WIDTH = 60
#: The CSV columns, one row per face (an image without a face: one row with the face columns empty).
CSV_COLUMNS = ("image", "face", "x1", "y1", "x2", "y2", "confidence", "name", "score", "margin", "best_match")


def named_images(namer, paths: Sequence, *, read: Optional[Callable] = None,
                 progress: bool = False) -> Iterator[Tuple[str, Optional[np.ndarray], object]]:
    """``(path, image, result)`` for each image of ``paths`` in order, named by ``namer``;
    ``(path, None, reason)`` for an image that cannot be read."""
    from tqdm import tqdm

    if read is None:
        from models.io import read_image as read
    for path in tqdm(paths, desc="identify", unit="photo", disable=not progress):
        try:
            image = read(path)
        except ValueError as exc:
            yield str(path), None, str(exc)
            continue
        yield str(path), image, namer.name(image, source=str(path))


def name_images(namer, paths: Sequence, *, read: Optional[Callable] = None,
                progress: bool = False) -> Tuple[list, List[Tuple[str, str]]]:
    """Every face of every image in ``paths``, named by ``namer``.

    Returns
    -------
    results : list of pipeline.stills.StillResult
        One per readable image, in the order of ``paths``.
    errors : list of (str, str)
        ``(path, reason)`` of each image that could not be read.
    """
    results, errors = [], []
    for path, image, outcome in named_images(namer, paths, read=read, progress=progress):
        if image is None:
            errors.append((path, outcome))
        else:
            results.append(outcome)
    return results, errors


def _cell(value: float, digits: int) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def format_table(results: list, errors: list, namer) -> str:
    """One line per face, readable on a terminal (names with control characters escaped)."""
    def shown(path: str) -> str:              # the end of a long path is the part that tells images apart
        text = printable(path)
        return text if len(text) <= MAX_PATH_WIDTH else "..." + text[3 - MAX_PATH_WIDTH:]

    w = max([len("image")] + [len(shown(r.source)) for r in results] + [len(shown(p)) for p, _ in errors])
    lines = [f"cosine similarity threshold {namer.similarity_threshold:.3f}, min margin {namer.min_margin:.3f}",
             f"{'image':{w}s} {'#':>2s} {'box (x1,y1,x2,y2)':>21s} {'name':20s} {'score':>6s} {'margin':>6s}"
             "  best match"]
    for r in results:
        if not r.faces:
            lines.append(f"{shown(r.source):{w}s}  - no face found")
        for i, f in enumerate(r.faces):
            box = ",".join(f"{v:.0f}" for v in f.xyxy)
            name = printable(f.name) if f.name else "Unknown"
            lines.append(f"{shown(r.source):{w}s} {i:2d} {box:>21s} {name:20s} {_cell(f.score, 3):>6s} "
                         f"{_cell(f.margin, 3):>6s}  {printable(f.best) if f.best else '-'}")
    for path, reason in errors:
        lines.append(f"{shown(path):{w}s}  - error: {printable(reason)}")
    faces = sum(len(r) for r in results)
    named = sum(f.name is not None for r in results for f in r.faces)
    lines.append(f"{len(results)} images, {faces} faces, {named} named"
                 + (f"; {len(errors)} could not be read" if errors else ""))
    return "\n".join(lines)


def format_csv(results: list) -> str:
    """:data:`CSV_COLUMNS`, one row per face; ``name`` empty = Unknown."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        if not r.faces:
            writer.writerow([r.source] + [""] * (len(CSV_COLUMNS) - 1))
        for i, f in enumerate(r.faces):
            writer.writerow([r.source, i, *(f"{v:.1f}" for v in f.xyxy), _cell(f.confidence, 4), f.name or "",
                             _cell(f.score, 4), _cell(f.margin, 4), f.best or ""])
    return out.getvalue()


def format_json(results: list, errors: list, namer) -> str:
    """``{"similarity_threshold", "min_margin", "images": [...], "faces": [...], "errors": [...]}``:
    every image (size, face count), every face with its ``image`` and number ``face``."""
    faces = [{"image": r.source, "face": i, **f.as_dict()} for r in results for i, f in enumerate(r.faces)]
    return json.dumps({
        "similarity_threshold": namer.similarity_threshold, "min_margin": namer.min_margin,
        "images": [{"image": r.source, "width": r.width, "height": r.height, "faces": len(r)} for r in results],
        "faces": faces, "errors": [{"image": p, "error": e} for p, e in errors]}, indent=2)


def format_results(results: list, errors: list, fmt: str, namer) -> str:
    """The results in one of :data:`FORMATS` (errors are in the table and the JSON; CSV has faces only)."""
    if fmt == "table":
        return format_table(results, errors, namer)
    if fmt == "csv":
        return format_csv(results)
    if fmt == "json":
        return format_json(results, errors, namer)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
