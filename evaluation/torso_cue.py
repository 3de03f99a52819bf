"""How well the clothing cue tells people apart on hand-labelled real frames.

For every labelled face of a clip (``evaluation/labels/NAME.csv``: frame, x,
y, w, h, name) the torso descriptor (:class:`models.torso.TorsoDescriber`) is
taken from the decoded frame. Pairs of descriptors of the same person on two
different frames, and of two different people, give the two similarity
distributions that the scene linker's ``min_similarity`` and ``min_margin``
sit between. Only labelled people count (``_person/pNN`` ids are people too:
they are told apart, just not enrolled).

``python -m evaluation.torso_cue --clips facenet_pytorch_pedestrians short_hamilton_clip``
prints the percentiles of both distributions and, per threshold, the share
of same-person pairs above it and of different-person pairs above it.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from evaluation.detector_recall import read_frames
from models.torso import TorsoDescriber

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "evaluation" / "labels"


@dataclass(frozen=True)
class CueStats:
    """Similarity distributions of one set of clips.

    Attributes
    ----------
    same, different : ndarray
        ``(P,)`` and ``(Q,)`` torso similarities of same-person pairs (two frames) and different-person pairs.
    faces, valid : int
        Labelled faces read, and faces whose torso region was inside the frame.
    """

    same: np.ndarray
    different: np.ndarray
    faces: int
    valid: int

    def table(self, thresholds: Sequence[float] = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9)) -> List[dict]:
        """Per threshold: the share of same-person pairs at or above it (kept) and of different-person ones (confused)."""
        return [{"threshold": t, "same_at_or_above": _share(self.same >= t),
                 "different_at_or_above": _share(self.different >= t)} for t in thresholds]


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def labelled_descriptors(video: Path, labels: Path, describer: TorsoDescriber) -> Tuple[list, int]:
    """``[(name, frame, descriptor)]`` of the labelled faces whose torso is in the frame, and the face count."""
    rows = list(csv.DictReader(open(labels, newline="")))
    frames = read_frames(video, sorted({int(r["frame"]) for r in rows}))
    out = []
    for r in rows:
        img = frames.get(int(r["frame"]))
        if img is None:
            continue
        x, y, w, h = (float(r[k]) for k in ("x", "y", "w", "h"))
        cue = describer.describe(img, np.asarray([[x, y, x + w, y + h]], np.float32))
        if cue.valid[0]:
            out.append((r["name"], int(r["frame"]), cue.descriptor[0]))
    return out, len(rows)


def measure(clips: Sequence[str], shared: Path, describer: TorsoDescriber) -> CueStats:
    """Same- and different-person torso similarities within each clip (pairs never cross clips)."""
    same, different, faces, valid = [], [], 0, 0
    for clip in clips:
        found, n = labelled_descriptors(shared / "data" / "video" / f"{clip}.mp4", LABELS / f"{clip}.csv",
                                        describer)
        faces, valid = faces + n, valid + len(found)
        for (na, fa, da), (nb, fb, db) in itertools.combinations(found, 2):
            if na == nb and fa != fb:
                same.append(float(da @ db))
            elif na != nb:
                different.append(float(da @ db))
    return CueStats(np.asarray(same), np.asarray(different), faces, valid)


def _percentiles(values: np.ndarray) -> Dict[str, float]:
    if not values.size:
        return {}
    return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in (5, 25, 50, 75, 95)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.torso_cue", description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", nargs="+", default=["facenet_pytorch_pedestrians", "short_hamilton_clip"],
                   help="labelled clips (evaluation/labels/NAME.csv and SHARED/data/video/NAME.mp4)")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared data folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    stats = measure(args.clips, args.shared, TorsoDescriber())
    report = {"clips": args.clips, "faces": stats.faces, "with_torso": stats.valid,
              "same_pairs": int(stats.same.size), "different_pairs": int(stats.different.size),
              "same": _percentiles(stats.same), "different": _percentiles(stats.different),
              "thresholds": stats.table()}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{stats.valid} of {stats.faces} labelled faces with a torso in the frame; "
          f"{stats.same.size} same-person pairs, {stats.different.size} different-person pairs")
    print(f"same person:      {report['same']}")
    print(f"different people: {report['different']}")
    for row in report["thresholds"]:
        print(f"  at {row['threshold']:.2f}: same kept {row['same_at_or_above']:.1%}, "
              f"different above {row['different_at_or_above']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
