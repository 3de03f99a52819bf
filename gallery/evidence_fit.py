"""Measuring the evidence rule's table: probe faces of enrolled people, degraded to each height, against the gallery.

The identifier's evidence rule (:mod:`gallery.evidence`) compares a face with
every enrolled person's *template*, so its distributions are measured the same
way: each probe photo of an enrolled person is rendered with its face ``h`` px
high (:func:`gallery.degraded.render_small_face`: area downscale, optional
blur, JPEG), detected and embedded by the normal models, and scored against the
gallery index. The right person's score gives ``same_mean`` and ``frame_std``;
the other people's give ``different_mean`` and ``different_spread``.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Sequence

import numpy as np

from gallery.degraded import DEFAULT_HEIGHTS, observe_small_face

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceRow:
    """The measured distributions at one face height (``n`` probe faces detected of ``tried``)."""

    height: int
    tried: int
    n: int
    same_mean: float
    frame_std: float
    different_mean: float
    different_std: float
    rank1: float
    det_score_median: float


def probe_faces(probe_dir: Path, people: Sequence[str], detector) -> List[tuple]:
    """``(person, image, xyxy)`` of the largest face of each photo under ``probe_dir/<person>/`` for enrolled people."""
    from models.io import read_image

    out = []
    for folder in sorted(p for p in Path(probe_dir).iterdir() if p.is_dir() and p.name in people):
        for path in sorted(folder.iterdir()):
            try:
                image = read_image(path)
            except (OSError, ValueError) as exc:
                logger.info("skipping %s: %s", path, exc)
                continue
            dets = detector.detect(image)
            if len(dets):
                out.append((folder.name, image, dets.xyxy[int(np.argmax(dets.height))].astype(np.float64)))
    return out


def measure(probes: Sequence[tuple], index, detector, embedder, *, heights: Sequence[int] = DEFAULT_HEIGHTS,
            progress: bool = False, **render_kw) -> List[EvidenceRow]:
    """One :class:`EvidenceRow` per height (``render_kw``: ``jpeg_quality``, ``blur_sigma``, ``canvas_size``)."""
    from tqdm import tqdm

    people = list(index.people)
    rows = []
    for h in tqdm(list(heights), desc="heights", disable=not progress):
        same, diff, rank1, scores = [], [], [], []
        for person, image, xyxy in probes:
            obs = observe_small_face(image, xyxy, h, detector, embedder, **render_kw)
            if not obs.detected:
                continue
            s = index.person_scores(obs.embedding[None])[0]
            k = people.index(person)
            same.append(float(s[k]))
            diff.extend(float(v) for i, v in enumerate(s) if i != k)
            rank1.append(int(np.argmax(s)) == k)
            scores.append(obs.det_score)
        rows.append(_row(h, len(probes), same, diff, rank1, scores))
    return rows


def _row(h, tried, same, diff, rank1, scores) -> EvidenceRow:
    nan = float("nan")
    if not same:
        return EvidenceRow(h, tried, 0, nan, nan, nan, nan, nan, nan)
    return EvidenceRow(h, tried, len(same), float(np.mean(same)), float(np.std(same)), float(np.mean(diff)),
                       float(np.std(diff)), float(np.mean(rank1)), float(np.median(scores)))


def format_rows(rows: Sequence[EvidenceRow]) -> str:
    """A plain-text table, then the identifier's YAML keys measured from it."""
    lines = ["height  detected  same mean  frame std  diff mean  diff std  rank-1  det score",
             *(f"{r.height:5d}px  {r.n:3d}/{r.tried:<3d}   {r.same_mean:8.3f}  {r.frame_std:9.3f}  "
               f"{r.different_mean:9.3f}  {r.different_std:8.3f}  {r.rank1:6.2f}  {r.det_score_median:9.2f}"
               for r in rows)]
    ok = [r for r in rows if r.n]
    lines += ["", "identifier:   # measured with python -m gallery evidence (see configs/default.yaml)",
              f"  evidence_heights: [{', '.join(str(r.height) for r in ok)}]",
              f"  same_mean: [{', '.join(f'{r.same_mean:.3f}' for r in ok)}]",
              f"  different_mean: [{', '.join(f'{r.different_mean:.3f}' for r in ok)}]",
              f"  frame_std: [{', '.join(f'{r.frame_std:.3f}' for r in ok)}]",
              f"  different_spread: {max(r.different_std for r in ok):.3f}" if ok else ""]
    return "\n".join(lines)


def to_dict(rows: Sequence[EvidenceRow]) -> dict:
    return {"rows": [asdict(r) for r in rows]}
