"""Tracking and naming metrics.

Tracking metrics come from maintained implementations: py-motmetrics for
MOTA, IDF1, ID switches and fragmentations (CLEAR MOT and ID measures),
TrackEval for HOTA. This module only prepares their inputs the same way for
both and adds the naming metrics.

Matching rules
--------------
* A track box and a gt box can match when their IoU >= ``iou_threshold``
  (0.5, as MOTChallenge).
* Gt boxes with visibility < ``min_visibility`` are "don't care": they are
  removed, and so are track boxes that match one of them (Hungarian on IoU
  over all gt boxes of the frame, as MOT17 does with distractors). A face
  hidden behind another is then neither a miss nor, if tracked, a false
  positive.
* With sparse ground truth only labelled frames are scored; track rows on
  other frames are dropped.

Naming metrics (on the box matches made by py-motmetrics)
--------------------------------------------------------
For every matched (gt box, track box) pair the gt identity (enrolled or
not) is compared with the name the track showed on that frame:

``correct``               enrolled, shown their name;
``wrong_name``            enrolled, shown somebody else's name;
``unknown_for_enrolled``  enrolled, shown no name;
``named_non_enrolled``    not enrolled, shown a name;
``correct_unknown``       not enrolled, shown no name.

``wrong_name_rate`` = (wrong_name + named_non_enrolled) / named boxes (a
named box is a matched box showing a name): the costly error.
``naming_precision`` = correct / named boxes; ``naming_recall`` = correct /
matched boxes of enrolled people. ``named_after_warmup`` = correct / all gt
boxes of enrolled people (matched or not) from ``warmup_seconds`` after the
person's first appearance on. ``time_to_first_correct_name`` is, per
enrolled person, the seconds from their first gt box to the first box where
they are matched and correctly named.

Naming by face height (:func:`naming_by_height`)
-----------------------------------------------
The scored gt boxes of enrolled people, binned by the height of the gt box
in frame pixels: per bin the share of all of them it holds and, of its boxes,
the percentages shown their own name, another name, Unknown (matched, no
name), and no box at all (not matched). The four add up to 100 %. With
sparse labels only the labelled frames count.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.boxes import iou_matrix, tlwh_to_xyxy

from .gt import BoxTable, GroundTruth

log = logging.getLogger(__name__)

#: motmetrics metric names -> our names.
CLEAR_METRICS = {
    "mota": "mota", "motp": "motp", "idf1": "idf1", "idp": "idp", "idr": "idr",
    "num_switches": "id_switches", "num_fragmentations": "fragmentations",
    "num_misses": "misses", "num_false_positives": "false_positives",
    "num_objects": "gt_boxes", "num_predictions": "track_boxes",
    "mostly_tracked": "mostly_tracked", "mostly_lost": "mostly_lost",
    "num_unique_objects": "gt_ids", "recall": "recall", "precision": "precision",
}


@dataclass
class FrameData:
    """One scored frame after preprocessing.

    Attributes
    ----------
    frame : int
        1-based frame number.
    gt_ids, hyp_ids : ndarray
        ``(G,)`` and ``(K,)`` int64 ids.
    iou : ndarray
        ``(G, K)`` IoU between gt and track boxes.
    hyp_rows : ndarray
        ``(K,)`` row of each track box in the tracks table (for names).
    """

    frame: int
    gt_ids: np.ndarray
    hyp_ids: np.ndarray
    iou: np.ndarray
    hyp_rows: np.ndarray


def prepare_frames(truth: GroundTruth, tracks: BoxTable, *, iou_threshold: float = 0.5,
                   min_visibility: float = 0.5) -> tuple[List[FrameData], int]:
    """Per-frame gt/track ids and IoUs, with "don't care" boxes removed.

    Returns
    -------
    frames : list of FrameData
    ignored : int
        Number of gt boxes removed for low visibility.
    """
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if not 0 <= min_visibility <= 1:
        raise ValueError(f"min_visibility must be in [0, 1], got {min_visibility}")
    gt_by = truth.boxes.by_frame()
    hyp_by = tracks.by_frame()
    if truth.labelled_frames is not None:
        frame_list = [int(f) for f in truth.labelled_frames]
    else:
        last = max([truth.num_frames] + list(gt_by) + list(hyp_by)) if (gt_by or hyp_by or truth.num_frames) else 0
        frame_list = list(range(1, last + 1))
    empty = np.zeros(0, np.int64)
    out, ignored = [], 0
    for f in frame_list:
        g = gt_by.get(f, empty)
        h = hyp_by.get(f, empty)
        g_xyxy = tlwh_to_xyxy(truth.boxes.tlwh[g]).reshape(-1, 4)
        h_xyxy = tlwh_to_xyxy(tracks.tlwh[h]).reshape(-1, 4)
        iou = iou_matrix(g_xyxy, h_xyxy)
        care = truth.boxes.score[g] >= min_visibility
        if not care.all():
            ignored += int((~care).sum())
            keep_h = np.ones(len(h), bool)
            if len(h):
                cost = np.where(iou >= iou_threshold, 1 - iou, 10.0)
                rows, cols = linear_sum_assignment(cost)
                for r, c in zip(rows, cols):
                    if cost[r, c] < 10 and not care[r]:
                        keep_h[c] = False
            g, iou = g[care], iou[care][:, keep_h]
            h = h[keep_h]
        out.append(FrameData(f, truth.boxes.ids[g], tracks.ids[h], iou, h))
    return out, ignored


def clear_metrics(frames: List[FrameData], *, iou_threshold: float = 0.5):
    """CLEAR MOT and ID metrics with py-motmetrics.

    Returns
    -------
    summary : dict
        Our metric names (see :data:`CLEAR_METRICS`) -> values.
    accumulator : motmetrics.MOTAccumulator
        For the matches (naming metrics use its events).
    """
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    for fd in frames:
        dist = np.where(fd.iou >= iou_threshold, 1.0 - fd.iou, np.nan)
        acc.update(fd.gt_ids.tolist(), fd.hyp_ids.tolist(), dist, frameid=fd.frame)
    mh = mm.metrics.create()
    df = mh.compute(acc, metrics=list(CLEAR_METRICS), name="seq")
    summary = {}
    for k, v in CLEAR_METRICS.items():
        val = df[k].iloc[0]
        summary[v] = int(val) if k.startswith("num_") or k.startswith("mostly") else float(val)
    # motmetrics' MOTP is a mean distance (1 - IoU); report the mean IoU too.
    summary["mean_iou"] = 1.0 - summary["motp"] if np.isfinite(summary["motp"]) else float("nan")
    return summary, acc


def hota(frames: List[FrameData]) -> Dict[str, float]:
    """HOTA, DetA, AssA, LocA with TrackEval (averaged over its alpha thresholds)."""
    from trackeval.metrics import HOTA

    gt_map: Dict[int, int] = {}
    hyp_map: Dict[int, int] = {}
    gt_ids, hyp_ids, sims = [], [], []
    for fd in frames:
        gt_ids.append(np.array([gt_map.setdefault(int(i), len(gt_map)) for i in fd.gt_ids], dtype=int))
        hyp_ids.append(np.array([hyp_map.setdefault(int(i), len(hyp_map)) for i in fd.hyp_ids], dtype=int))
        sims.append(np.asarray(fd.iou, dtype=float).reshape(len(fd.gt_ids), len(fd.hyp_ids)))
    data = {
        "num_timesteps": len(frames), "num_gt_ids": len(gt_map), "num_tracker_ids": len(hyp_map),
        "num_gt_dets": int(sum(len(g) for g in gt_ids)), "num_tracker_dets": int(sum(len(h) for h in hyp_ids)),
        "gt_ids": gt_ids, "tracker_ids": hyp_ids, "similarity_scores": sims,
    }
    res = HOTA().eval_sequence(data)
    return {k.lower(): float(np.mean(res[k])) for k in ("HOTA", "DetA", "AssA", "LocA")}


def match_pairs(acc) -> np.ndarray:
    """``(M, 3)`` int64 ``(frame, gt id, track id)`` of every box match."""
    ev = acc.mot_events
    ev = ev[ev["Type"].isin(["MATCH", "SWITCH"])]
    if len(ev) == 0:
        return np.zeros((0, 3), np.int64)
    frames = ev.index.get_level_values(0).to_numpy()
    return np.stack([frames, ev["OId"].to_numpy(), ev["HId"].to_numpy()], axis=1).astype(np.int64)


def _ratio(a, b) -> float:
    """``a / b`` as a float, NaN when ``b`` is 0."""
    return float(a) / b if b else float("nan")


def _count_naming_outcomes(truth: GroundTruth, tracks: BoxTable, pairs: np.ndarray):
    """Sort every box match into one naming outcome.

    Parameters
    ----------
    truth : GroundTruth
        Gives each gt id its identity (missing ids count as not enrolled).
    tracks : BoxTable
        The tracker rows; ``names`` (or no name when absent) per row.
    pairs : ndarray
        ``(M, 3)`` ``(frame, gt id, track id)`` matches (:func:`match_pairs`).

    Returns
    -------
    counts : dict
        ``correct``, ``wrong_name``, ``unknown_for_enrolled``,
        ``named_non_enrolled``, ``correct_unknown`` (ints summing to M).
    correct_frames : dict
        gt id -> frames, in ``pairs`` order, where that enrolled person was
        matched and shown their own name.
    """
    names = tracks.names if tracks.names is not None else [None] * len(tracks)
    name_at = {(int(f), int(t)): names[i] for i, (f, t) in enumerate(zip(tracks.frame, tracks.ids))}
    ident = truth.identities
    counts = dict(correct=0, wrong_name=0, unknown_for_enrolled=0, named_non_enrolled=0, correct_unknown=0)
    correct_frames: Dict[int, List[int]] = {}
    for f, g, h in pairs:
        who = ident.get(int(g))
        shown = name_at.get((int(f), int(h)))
        enrolled = who is not None and who.enrolled
        if enrolled:
            if shown is None:
                counts["unknown_for_enrolled"] += 1
            elif shown == who.name:
                counts["correct"] += 1
                correct_frames.setdefault(int(g), []).append(int(f))
            else:
                counts["wrong_name"] += 1
        else:
            counts["correct_unknown" if shown is None else "named_non_enrolled"] += 1
    return counts, correct_frames


def _enrolled_gt_frames(truth: GroundTruth, frames: List[FrameData]):
    """The scored gt boxes of enrolled people (after preprocessing), per id.

    Returns
    -------
    first_seen : dict
        gt id -> first scored frame of that enrolled person.
    gt_frames : dict
        gt id -> every scored frame with a gt box of that person, in order
        (ids in order of first appearance).
    """
    ident = truth.identities
    first_seen: Dict[int, int] = {}
    gt_frames: Dict[int, List[int]] = {}
    for fd in frames:
        for g in fd.gt_ids:
            g = int(g)
            if ident.get(g) is not None and ident[g].enrolled:
                first_seen.setdefault(g, fd.frame)
                gt_frames.setdefault(g, []).append(fd.frame)
    return first_seen, gt_frames


def _naming_after_warmup(truth: GroundTruth, first_seen: Dict[int, int], gt_frames: Dict[int, List[int]],
                         correct_frames: Dict[int, List[int]], fps: float, warmup_seconds: float):
    """Correct names from ``warmup_seconds`` after each person's first box on,
    and each person's time to a first correct name.

    Returns
    -------
    after_correct, after_total : int
        Correctly named gt boxes, and all gt boxes, at least
        ``warmup_seconds * fps`` frames after the person's first scored box.
    ttfc : dict
        ``"<gt id>:<name>"`` -> seconds from the first scored box to the first
        correctly named one, or None when never named correctly.
    """
    warm = warmup_seconds * fps
    after_total = after_correct = 0
    ttfc: Dict[str, Optional[float]] = {}
    for g, fl in gt_frames.items():
        good = set(correct_frames.get(g, []))
        for f in fl:
            if f - first_seen[g] >= warm:
                after_total += 1
                after_correct += f in good
        key = f"{g}:{truth.identities[g].name}"
        ttfc[key] = (min(good) - first_seen[g]) / fps if good else None
    return after_correct, after_total, ttfc


def naming_metrics(truth: GroundTruth, tracks: BoxTable, frames: List[FrameData], pairs: np.ndarray, *,
                   warmup_seconds: float = 1.0) -> dict:
    """Naming metrics on matched boxes (see the module docstring).

    Parameters
    ----------
    truth : GroundTruth
        Identities and frame rate (30 fps when unknown).
    tracks : BoxTable
        Tracker rows with their names (``names`` None: nothing named).
    frames : list of FrameData
        The scored frames (:func:`prepare_frames`).
    pairs : ndarray
        ``(M, 3)`` box matches (:func:`match_pairs`).
    warmup_seconds : float
        Grace period per person for ``named_after_warmup``.

    Returns
    -------
    dict
        The outcome counts, ``matched_boxes``, ``named_boxes``,
        ``enrolled_matched_boxes``, the rates (NaN when their denominator is
        0), ``warmup_seconds``, ``time_to_first_correct_name`` (per person)
        with its median and max, and ``enrolled_never_named``.
    """
    counts, correct_frames = _count_naming_outcomes(truth, tracks, pairs)
    matched = int(len(pairs))
    named = counts["correct"] + counts["wrong_name"] + counts["named_non_enrolled"]
    enrolled_matched = counts["correct"] + counts["wrong_name"] + counts["unknown_for_enrolled"]
    first_seen, gt_frames = _enrolled_gt_frames(truth, frames)
    fps = truth.frame_rate or 30.0
    after_correct, after_total, ttfc = _naming_after_warmup(truth, first_seen, gt_frames, correct_frames, fps,
                                                            warmup_seconds)
    known = [v for v in ttfc.values() if v is not None]
    return {
        **counts,
        "matched_boxes": matched,
        "named_boxes": named,
        "enrolled_matched_boxes": enrolled_matched,
        "wrong_name_rate": _ratio(counts["wrong_name"] + counts["named_non_enrolled"], named),
        "naming_precision": _ratio(counts["correct"], named),
        "naming_recall": _ratio(counts["correct"], enrolled_matched),
        "named_after_warmup": _ratio(after_correct, after_total),
        "warmup_seconds": warmup_seconds,
        "time_to_first_correct_name": ttfc,
        "time_to_first_correct_name_median": float(np.median(known)) if known else float("nan"),
        "time_to_first_correct_name_max": float(np.max(known)) if known else float("nan"),
        "enrolled_never_named": int(sum(v is None for v in ttfc.values())),
    }


#: Face-height bins (gt box height in frame pixels) of :func:`naming_by_height`.
HEIGHT_BINS = (0, 30, 50, 80, float("inf"))


def naming_by_height(truth: GroundTruth, tracks: BoxTable, *, bins=HEIGHT_BINS, iou_threshold: float = 0.5,
                     min_visibility: float = 0.5, frames: Optional[List[FrameData]] = None,
                     pairs: Optional[np.ndarray] = None) -> List[dict]:
    """What was shown on the gt boxes of enrolled people, per face height.

    Parameters
    ----------
    truth : GroundTruth
        Dense (every frame) or sparse (``labelled_frames``) ground truth.
    tracks : BoxTable
        Tracker rows with the names shown (``names`` None: nothing named).
    bins : sequence of float
        Increasing edges; a box of height ``h`` falls in ``[lo, hi)``.
    iou_threshold, min_visibility : float
        As in :func:`prepare_frames` (less visible gt boxes are left out).
    frames, pairs : optional
        :func:`prepare_frames`' frames and :func:`match_pairs`' matches of
        the same call, when the caller already has them.

    Returns
    -------
    list of dict
        One per bin: ``lo``, ``hi`` (None for an infinite edge), ``label``,
        ``gt_boxes`` (enrolled), ``share`` (of all enrolled gt boxes), the
        counts ``correct``, ``wrong_name``, ``unknown``, ``no_box`` and their
        percentages ``correct_pct``, ``wrong_name_pct``, ``unknown_pct``,
        ``no_box_pct`` (NaN for an empty bin), and, for the people who are
        not enrolled, ``other_gt_boxes`` and ``other_named`` (boxes of theirs
        shown some name).
    """
    edges = np.asarray(bins, float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be at least two increasing edges, got {bins}")
    if frames is None or pairs is None:
        frames, _ = prepare_frames(truth, tracks, iou_threshold=iou_threshold, min_visibility=min_visibility)
        pairs = match_pairs(clear_metrics(frames, iou_threshold=iou_threshold)[1])
    height_at = {(int(f), int(g)): float(h) for f, g, h in zip(truth.boxes.frame, truth.boxes.ids,
                                                                truth.boxes.tlwh[:, 3])}
    names = tracks.names if tracks.names is not None else [None] * len(tracks)
    name_at = {(int(f), int(t)): names[i] for i, (f, t) in enumerate(zip(tracks.frame, tracks.ids))}
    shown = {(int(f), int(g)): name_at.get((int(f), int(h))) for f, g, h in pairs}
    keys = ("correct", "wrong_name", "unknown", "no_box", "other_gt_boxes", "other_named")
    counts = [dict.fromkeys(keys, 0) for _ in range(len(edges) - 1)]
    for fd in frames:
        for g in fd.gt_ids:
            key = (fd.frame, int(g))
            b = int(np.searchsorted(edges, height_at[key], side="right")) - 1
            if not 0 <= b < len(counts):
                continue
            who = truth.identities.get(int(g))
            outcome = _height_outcome(who, key in shown, shown.get(key))
            if outcome.startswith("other"):
                counts[b]["other_gt_boxes"] += 1
                counts[b]["other_named"] += outcome == "other_named"
            else:
                counts[b][outcome] += 1
    total = sum(c["correct"] + c["wrong_name"] + c["unknown"] + c["no_box"] for c in counts)
    return [_height_row(lo, hi, c, total) for lo, hi, c in zip(edges[:-1], edges[1:], counts)]


def _height_outcome(who, matched: bool, name: Optional[str]) -> str:
    """One gt box's outcome: ``correct``, ``wrong_name``, ``unknown``,
    ``no_box`` (enrolled), or ``other_named`` / ``other`` (not enrolled)."""
    if who is None or not who.enrolled:
        return "other_named" if matched and name is not None else "other"
    if not matched:
        return "no_box"
    if name is None:
        return "unknown"
    return "correct" if name == who.name else "wrong_name"


def _height_row(lo: float, hi: float, c: dict, total: int) -> dict:
    """One bin of :func:`naming_by_height` from its counts."""
    n = c["correct"] + c["wrong_name"] + c["unknown"] + c["no_box"]
    label = f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">= {lo:g}"
    row = {"lo": float(lo), "hi": float(hi) if np.isfinite(hi) else None, "label": label, "gt_boxes": n,
           "share": _ratio(n, total)}
    for k in ("correct", "wrong_name", "unknown", "no_box"):
        row[k] = c[k]
        row[f"{k}_pct"] = 100 * _ratio(c[k], n)
    row["other_gt_boxes"] = c["other_gt_boxes"]
    row["other_named"] = c["other_named"]
    return row


def format_height_table(rows: List[dict]) -> str:
    """A markdown table of :func:`naming_by_height`."""
    def pct(v):
        return "" if v != v else f"{v:.1f} %"

    lines = ["| face height (px) | enrolled gt boxes | share | right name | Unknown | no box | wrong name | "
             "not enrolled: boxes / named |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['gt_boxes']} | {pct(100 * r['share'])} | {pct(r['correct_pct'])} | "
                     f"{pct(r['unknown_pct'])} | {pct(r['no_box_pct'])} | {pct(r['wrong_name_pct'])} | "
                     f"{r['other_gt_boxes']} / {r['other_named']} |")
    return "\n".join(lines)


def score(truth: GroundTruth, tracks: BoxTable, *, iou_threshold: float = 0.5, min_visibility: float = 0.5,
          warmup_seconds: float = 1.0) -> dict:
    """All metrics of one sequence as a flat-ish dict (JSON-serialisable);
    ``naming_by_height`` holds :func:`naming_by_height` over :data:`HEIGHT_BINS`."""
    frames, ignored = prepare_frames(truth, tracks, iou_threshold=iou_threshold, min_visibility=min_visibility)
    clear, acc = clear_metrics(frames, iou_threshold=iou_threshold)
    result = {"frames_scored": len(frames), "ignored_gt_boxes": ignored, "iou_threshold": iou_threshold,
              "min_visibility": min_visibility, "sparse": truth.labelled_frames is not None}
    result.update(clear)
    result["id_switches_per_1000_gt"] = 1000.0 * clear["id_switches"] / max(clear["gt_boxes"], 1)
    result.update(hota(frames))
    pairs = match_pairs(acc)
    result["naming"] = naming_metrics(truth, tracks, frames, pairs, warmup_seconds=warmup_seconds)
    result["naming_by_height"] = naming_by_height(truth, tracks, frames=frames, pairs=pairs)
    return result


def naming_sweep(truth: GroundTruth, tracks: BoxTable, best_matches, thresholds, *, min_margin: float = 0.0,
                 iou_threshold: float = 0.5, min_visibility: float = 0.5, warmup_seconds: float = 1.0) -> list:
    """Naming metrics of per-box decisions as the similarity threshold varies.

    Parameters
    ----------
    best_matches : sequence of (str, float, float)
        Per tracker row: the best person, its cosine similarity and its margin
        over the runner-up (no threshold applied).
    thresholds : sequence of float
        Similarity thresholds; a row is named when score >= threshold and
        margin >= ``min_margin``.

    Returns
    -------
    list of dict
        One naming-metrics dict (see :func:`naming_metrics`, without the
        per-person times) per threshold, with ``threshold`` added.
    """
    frames, _ = prepare_frames(truth, tracks, iou_threshold=iou_threshold, min_visibility=min_visibility)
    _, acc = clear_metrics(frames, iou_threshold=iou_threshold)
    pairs = match_pairs(acc)
    out = []
    for t in thresholds:
        names = [n if (s >= t and m >= min_margin) else None for n, s, m in best_matches]
        named = BoxTable(tracks.frame, tracks.ids, tracks.tlwh, tracks.score, names)
        r = naming_metrics(truth, named, frames, pairs, warmup_seconds=warmup_seconds)
        r.pop("time_to_first_correct_name")
        out.append({"threshold": float(t), **r})
    return out


def format_table(result: dict) -> str:
    """A markdown table of the main figures."""
    n = result["naming"]
    rows = [
        ("frames scored", result["frames_scored"]), ("gt boxes (scored)", result["gt_boxes"]),
        ("gt boxes ignored (low visibility)", result["ignored_gt_boxes"]),
        ("MOTA", f"{result['mota']:.3f}"), ("IDF1", f"{result['idf1']:.3f}"), ("HOTA", f"{result['hota']:.3f}"),
        ("DetA / AssA", f"{result['deta']:.3f} / {result['assa']:.3f}"),
        ("ID switches", result["id_switches"]),
        ("ID switches per 1000 gt boxes", f"{result['id_switches_per_1000_gt']:.2f}"),
        ("fragmentations", result["fragmentations"]),
        ("misses / false positives", f"{result['misses']} / {result['false_positives']}"),
        ("matched boxes", n["matched_boxes"]), ("named boxes", n["named_boxes"]),
        ("correct names", n["correct"]), ("wrong names (enrolled)", n["wrong_name"]),
        ("names for non-enrolled", n["named_non_enrolled"]),
        ("unknown for enrolled", n["unknown_for_enrolled"]),
        ("wrong-name rate (of named boxes)", f"{100 * n['wrong_name_rate']:.2f} %"),
        ("naming precision / recall", f"{n['naming_precision']:.3f} / {n['naming_recall']:.3f}"),
        (f"enrolled correctly named after {n['warmup_seconds']:g} s", f"{100 * n['named_after_warmup']:.1f} %"),
        ("time to first correct name, median / max (s)",
         f"{n['time_to_first_correct_name_median']:.2f} / {n['time_to_first_correct_name_max']:.2f}"),
        ("enrolled never named", n["enrolled_never_named"]),
    ]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    if result.get("naming_by_height"):
        lines += ["", "Enrolled people's gt boxes by face height:", "",
                  format_height_table(result["naming_by_height"])]
    return "\n".join(lines)
