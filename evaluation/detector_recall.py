"""Face detector recall by face height, per input size and confidence threshold.

The question this answers: how many of the faces of a given height does the
detector find when the frame is letterboxed into a 640, 960 or 1280 px input,
and what does each call cost? ``docs/detector_recall.md`` holds the results.

Matching rules
--------------
* Per frame, a detection and a gt box match when their IoU >= ``iou_threshold``
  (0.5); pairs are taken greedily in descending IoU, each box at most once
  (:func:`greedy_match`).
* Gt boxes less visible than ``min_visibility`` (0.5) are "don't care", as in
  :mod:`evaluation.metrics`: they are neither found nor missed, and a
  detection they take is not a false positive. They take part in the greedy
  matching like every other gt box.
* A gt box falls in the height bin ``[lo, hi)`` of its ``tlwh`` height, in
  pixels of the original frame (:data:`HEIGHT_BINS`).
* A false positive is a detection left unmatched; ``fp_per_frame`` divides
  their count by the number of frames scored.

Sequences
---------
Hand labels (``evaluation/labels/NAME.csv`` with
``../shared/data/video/NAME.mp4``) are scored on every labelled frame (they
are sparse already); dense sequences (a simulator or composite folder with
``gt/gt.txt`` and ``video.mp4``) on every ``stride``-th frame.
"""
from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

from tracker.boxes import iou_matrix, tlwh_to_xyxy

from . import gt as gtio

log = logging.getLogger(__name__)

#: Edges (px) of the face-height bins: ``[lo, hi)``.
HEIGHT_BINS = (0.0, 20.0, 30.0, 50.0, 80.0, float("inf"))
#: IoU a detection needs with a gt box to find it.
IOU_THRESHOLD = 0.5
#: Gt boxes less visible than this are "don't care".
MIN_VISIBILITY = 0.5
#: Frames of a dense sequence scored: every ``DEFAULT_STRIDE``-th.
DEFAULT_STRIDE = 3
#: Untimed calls before the timed ones (the first calls build the predictor).
WARMUP_CALLS = 2

__all__ = ["HEIGHT_BINS", "LabelledSequence", "HeightCounts", "greedy_match", "match_frame", "labelled_clip",
           "dense_sequence", "sequences_present", "read_frames", "measure", "run_detector_recall",
           "format_recall_tables", "machine_info"]


@dataclass
class LabelledSequence:
    """A video with ground truth and the frames of it to score.

    Attributes
    ----------
    name : str
        Shown in the tables.
    video : Path
        The video file.
    truth : GroundTruth
        Its ground truth (``score`` of the boxes is the visibility).
    frames : list of int
        1-based frame numbers to score.
    """

    name: str
    video: Path
    truth: gtio.GroundTruth
    frames: List[int]


def greedy_match(gt_xyxy: np.ndarray, det_xyxy: np.ndarray, iou_threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Greedy one-to-one matching of gt and detected boxes by descending IoU.

    Parameters
    ----------
    gt_xyxy : ndarray
        ``(G, 4)`` gt boxes, ``xyxy``.
    det_xyxy : ndarray
        ``(D, 4)`` detected boxes, ``xyxy``.
    iou_threshold : float
        Least IoU of a match, in ``(0, 1]``.

    Returns
    -------
    ndarray
        ``(K, 2)`` int64 pairs ``(gt index, detection index)``, in the order
        they were taken (highest IoU first; ties in index order).
    """
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    iou = iou_matrix(np.asarray(gt_xyxy, float).reshape(-1, 4), np.asarray(det_xyxy, float).reshape(-1, 4))
    gi, di = np.nonzero(iou >= iou_threshold)
    order = np.argsort(-iou[gi, di], kind="stable")
    used_g, used_d, pairs = set(), set(), []
    for g, d in zip(gi[order], di[order]):
        if g not in used_g and d not in used_d:
            used_g.add(g)
            used_d.add(d)
            pairs.append((g, d))
    return np.asarray(pairs, np.int64).reshape(-1, 2)


def match_frame(gt_xyxy: np.ndarray, det_xyxy: np.ndarray, care: Optional[np.ndarray] = None, *,
                iou_threshold: float = IOU_THRESHOLD):
    """Which gt boxes of one frame were found, and how many detections are false positives.

    Parameters
    ----------
    gt_xyxy, det_xyxy : ndarray
        ``(G, 4)`` and ``(D, 4)`` boxes, ``xyxy``.
    care : ndarray, optional
        ``(G,)`` bool: False for a "don't care" gt box (default: all True).
    iou_threshold : float
        As in :func:`greedy_match`.

    Returns
    -------
    found : ndarray
        ``(G,)`` bool: the gt box was matched (always False where not ``care``).
    false_positives : int
        Detections matched to no gt box (one taken by a "don't care" box is
        not counted).
    """
    gt_xyxy = np.asarray(gt_xyxy, float).reshape(-1, 4)
    care = np.ones(len(gt_xyxy), bool) if care is None else np.asarray(care, bool).reshape(-1)
    if care.shape != (len(gt_xyxy),):
        raise ValueError(f"care must have {len(gt_xyxy)} entries, got {care.shape}")
    pairs = greedy_match(gt_xyxy, det_xyxy, iou_threshold)
    found = np.zeros(len(gt_xyxy), bool)
    found[pairs[:, 0]] = True
    num_det = len(np.asarray(det_xyxy).reshape(-1, 4))
    return found & care, int(num_det - len(pairs))


class HeightCounts:
    """Found and total gt boxes per height bin, and false positives, summed over frames.

    Parameters
    ----------
    bins : sequence of float
        At least two increasing edges; a box of height ``h`` is in ``[lo, hi)``.
    """

    def __init__(self, bins: Sequence[float] = HEIGHT_BINS) -> None:
        self.edges = np.asarray(bins, float)
        if self.edges.ndim != 1 or len(self.edges) < 2 or np.any(np.diff(self.edges) <= 0):
            raise ValueError(f"bins must be at least two increasing edges, got {bins}")
        self.gt = np.zeros(len(self.edges) - 1, np.int64)
        self.found = np.zeros(len(self.edges) - 1, np.int64)
        self.false_positives = 0
        self.frames = 0

    def add(self, heights: np.ndarray, found: np.ndarray, care: np.ndarray, false_positives: int) -> None:
        """Count one frame: ``(G,)`` gt heights, found and care flags, and its false positives."""
        heights = np.asarray(heights, float).reshape(-1)
        b = np.searchsorted(self.edges, heights, side="right") - 1
        ok = np.asarray(care, bool) & (b >= 0) & (b < len(self.gt))
        np.add.at(self.gt, b[ok], 1)
        np.add.at(self.found, b[ok & np.asarray(found, bool)], 1)
        self.false_positives += int(false_positives)
        self.frames += 1

    def rows(self) -> List[dict]:
        """One dict per bin: ``label``, ``lo``, ``hi`` (None: infinity), ``gt``, ``found``, ``recall`` (NaN: empty)."""
        out = []
        for lo, hi, n, k in zip(self.edges[:-1], self.edges[1:], self.gt, self.found):
            label = f"<{hi:g}" if lo <= 0 else (f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}")
            out.append({"label": label, "lo": float(lo), "hi": float(hi) if np.isfinite(hi) else None,
                        "gt": int(n), "found": int(k), "recall": float(k / n) if n else float("nan")})
        return out

    def summary(self) -> dict:
        """``bins`` (:meth:`rows`), ``gt``, ``found``, ``recall`` over all bins, ``frames`` and ``fp_per_frame``."""
        n, k = int(self.gt.sum()), int(self.found.sum())
        return {"bins": self.rows(), "gt": n, "found": k, "recall": float(k / n) if n else float("nan"),
                "frames": self.frames, "false_positives": self.false_positives,
                "fp_per_frame": self.false_positives / self.frames if self.frames else float("nan")}


def labelled_clip(labels: Path, video: Path) -> LabelledSequence:
    """A hand-labelled clip (``frame,x,y,w,h,name`` CSV), scored on all its labelled frames."""
    truth = gtio.read_sparse_labels(labels)
    return LabelledSequence(Path(labels).stem, Path(video), truth, [int(f) for f in truth.labelled_frames])


def dense_sequence(folder: Path, name: Optional[str] = None, stride: int = DEFAULT_STRIDE) -> LabelledSequence:
    """A simulator or composite folder (``video.mp4``, ``gt/gt.txt``), scored on frames 1, 1 + stride, ..."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    folder = Path(folder)
    truth = gtio.load_ground_truth(folder)
    last = truth.num_frames or int(truth.boxes.frame.max())
    return LabelledSequence(name or folder.name, folder / "video.mp4", truth, list(range(1, last + 1, stride)))


def sequences_present(clips: Sequence[Path], dense: Dict[str, Path], *, video_dir: Path,
                      stride: int = DEFAULT_STRIDE) -> List[LabelledSequence]:
    """The sequences whose files exist; a missing one is skipped with a log line.

    Parameters
    ----------
    clips : sequence of Path
        Hand-label CSVs; the video of ``NAME.csv`` is ``video_dir / NAME.mp4``.
    dense : dict
        ``{name: folder}`` of simulator or composite sequences.
    """
    out = []
    for labels in clips:
        video = Path(video_dir) / f"{Path(labels).stem}.mp4"
        if Path(labels).exists() and video.exists():
            out.append(labelled_clip(labels, video))
        else:
            log.warning("skipping %s: %s or %s is missing", Path(labels).stem, labels, video)
    for name, folder in dense.items():
        if (Path(folder) / gtio.GT_FILE).exists() and (Path(folder) / "video.mp4").exists():
            out.append(dense_sequence(folder, name, stride))
        else:
            log.warning("skipping %s: no %s and video.mp4 under %s", name, gtio.GT_FILE, folder)
    return out


def read_frames(video: Path, numbers: Sequence[int]) -> Dict[int, np.ndarray]:
    """Decode ``video`` once and keep the BGR frames with the given 1-based numbers."""
    wanted = set(int(n) for n in numbers)
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {video}")
    out: Dict[int, np.ndarray] = {}
    number = 0
    try:
        while len(out) < len(wanted):
            ok, frame = cap.read()
            if not ok:
                break
            number += 1
            if number in wanted:
                out[number] = frame
    finally:
        cap.release()
    if len(out) < len(wanted):
        log.warning("%s: %d of %d wanted frames could not be read", video, len(wanted) - len(out), len(wanted))
    return out


def measure(detect: Callable[[np.ndarray], object], frames: Dict[int, np.ndarray], truth: gtio.GroundTruth, *,
            bins: Sequence[float] = HEIGHT_BINS, iou_threshold: float = IOU_THRESHOLD,
            min_visibility: float = MIN_VISIBILITY, warmup: int = WARMUP_CALLS) -> dict:
    """Run ``detect`` on every frame, time each call and count recall by height.

    Parameters
    ----------
    detect : callable
        ``frame_bgr -> Detections`` (anything with an ``(N, 4)`` ``xyxy``).
    frames : dict
        ``{1-based frame number: BGR frame}``.
    truth : GroundTruth
        Boxes ``tlwh``; their ``score`` is the visibility.

    Returns
    -------
    dict
        :meth:`HeightCounts.summary` plus ``ms_median``, ``ms_p90`` (wall
        clock), ``cpu_ms_median`` (CPU time of this process, all threads: the
        work a call takes, less sensitive than the wall clock to other jobs on
        the machine) and ``calls`` (timed calls, after ``warmup`` untimed ones
        on the first frame).
    """
    counts = HeightCounts(bins)
    by_frame = truth.boxes.by_frame()
    empty = np.zeros(0, np.int64)
    if frames and warmup:
        first = frames[min(frames)]
        for _ in range(warmup):
            detect(first)
    times, cpu_times = [], []
    for number in sorted(frames):
        start, cpu_start = time.perf_counter(), time.process_time()
        dets = detect(frames[number])
        times.append(1000.0 * (time.perf_counter() - start))
        cpu_times.append(1000.0 * (time.process_time() - cpu_start))
        rows = by_frame.get(number, empty)
        tlwh = truth.boxes.tlwh[rows].reshape(-1, 4)
        care = truth.boxes.score[rows] >= min_visibility
        found, fp = match_frame(tlwh_to_xyxy(tlwh).reshape(-1, 4), np.asarray(dets.xyxy).reshape(-1, 4), care,
                                iou_threshold=iou_threshold)
        counts.add(tlwh[:, 3], found, care, fp)
    out = counts.summary()
    out.update(ms_median=_median(times), ms_p90=float(np.percentile(times, 90)) if times else float("nan"),
               cpu_ms_median=_median(cpu_times), calls=len(times))
    return out


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def run_detector_recall(sequences: Sequence[LabelledSequence], make_detector: Callable[[int, float], Callable],
                        *, sizes: Sequence[int] = (640, 960, 1280), confidences: Sequence[float] = (0.5, 0.3),
                        bins: Sequence[float] = HEIGHT_BINS, iou_threshold: float = IOU_THRESHOLD,
                        min_visibility: float = MIN_VISIBILITY) -> dict:
    """Measure every sequence at every (input size, confidence threshold).

    Parameters
    ----------
    sequences : sequence of LabelledSequence
    make_detector : callable
        ``(input_size, confidence_threshold) -> detect`` where ``detect`` maps
        a BGR frame to ``Detections`` (e.g. a ``FaceDetector``'s ``detect``).
        It is built once per setting and used on every sequence.

    Returns
    -------
    dict
        ``{"sequences": {name: {"video", "frames", "width", "height", "runs":
        [{"input_size", "confidence", **measure(...)}]}}, "sizes",
        "confidences", "iou_threshold", "min_visibility"}``.
    """
    decoded = {}
    result = {"sizes": list(sizes), "confidences": list(confidences), "iou_threshold": iou_threshold,
              "min_visibility": min_visibility, "sequences": {}}
    for seq in sequences:
        decoded[seq.name] = read_frames(seq.video, seq.frames)
        h, w = next(iter(decoded[seq.name].values())).shape[:2] if decoded[seq.name] else (0, 0)
        result["sequences"][seq.name] = {"video": str(seq.video), "frames": len(decoded[seq.name]),
                                         "width": int(w), "height": int(h), "runs": []}
    for size in sizes:
        for conf in confidences:
            detect = make_detector(int(size), float(conf))
            for seq in sequences:
                m = measure(detect, decoded[seq.name], seq.truth, bins=bins, iou_threshold=iou_threshold,
                            min_visibility=min_visibility)
                log.info("%s @%d conf %.2f: recall %.3f, %.2f FP/frame, %.1f ms", seq.name, size, conf,
                         m["recall"], m["fp_per_frame"], m["ms_median"])
                result["sequences"][seq.name]["runs"].append({"input_size": int(size), "confidence": float(conf),
                                                              **m})
    return result


def format_recall_tables(result: dict) -> str:
    """One markdown table per sequence of :func:`run_detector_recall`'s result."""
    def pct(r):
        return "n/a" if r["recall"] != r["recall"] else f"{100 * r['recall']:.1f} %"

    parts = []
    for name, seq in result["sequences"].items():
        if not seq["runs"]:
            continue
        head = seq["runs"][0]["bins"]
        parts.append(f"### {name} ({seq['width']}x{seq['height']}, {seq['frames']} frames)\n")
        parts.append("| input | conf | " + " | ".join(f"{b['label']} px (n={b['gt']})" for b in head)
                     + " | all | FP/frame | ms/call (median wall) | CPU ms/call (median) |")
        parts.append("|---" * (len(head) + 6) + "|")
        for run in seq["runs"]:
            cells = " | ".join(pct(b) for b in run["bins"])
            parts.append(f"| {run['input_size']} | {run['confidence']:g} | {cells} | {pct(run)} | "
                         f"{run['fp_per_frame']:.2f} | {run['ms_median']:.1f} | {run['cpu_ms_median']:.1f} |")
        parts.append("")
    return "\n".join(parts)


def machine_info(device: str = "cpu") -> dict:
    """Where the timings come from: platform, CPU, cores, load average, torch threads and the device."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpus_available": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "torch": torch.__version__, "device": device}
