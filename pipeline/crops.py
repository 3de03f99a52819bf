"""Detection inside small crops around tracked faces, between full-frame detections.

A full-frame pass costs the detector's whole input (640 px on the long side);
a track's face moves little from one frame to the next. So between full
frames the detector looks only at a square window around each track's
predicted box, a few face sizes wide, each resized to a small input
(:attr:`CropDetection.input_size`, 128 px by default). A window around a
small face is *upscaled* there, which gives a 20 px face more pixels than the
full frame does. A window is never shown to the detector smaller than the
full-frame pass shows it (its input grows in steps of 32 px), so a large face
keeps the size, and so the score, it has in a full frame: the detector's
confidence threshold and the identifier's confidence ramp mean the same on
both kinds of frame.

The steps, each a pure function tested alone:

1. :func:`plan_windows`: one square window per predicted box, ``margin`` face
   sizes wide, shifted (not shrunk) to stay inside the frame, and its input side;
2. the detector runs on the crops in one batched call per input side
   (:meth:`models.detector.FaceDetector.detect_crops`, the detector's own
   confidence threshold);
3. :func:`to_frame`: boxes and landmarks moved back to frame pixels (crops
   are cut at whole pixels, so the mapping is an exact offset);
4. :func:`drop_cut_faces`: a face touching a window side that lies inside the
   frame was cut by the crop (another person beside the tracked one), so it
   is dropped: its box is wrong and the window around that person, or the
   next full frame, sees it whole;
5. :func:`merge`: greedy non-maximum suppression across overlapping windows
   (two people side by side see each other's faces).

New faces are not looked for here: they come from the periodic full frame
and from cuts (:class:`pipeline.schedule.DetectionSchedule`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from tracker.boxes import iou_matrix
from tracker.checks import check_int, check_number
from tracker.detections import Detections

__all__ = ["CropDetection", "CropWindows", "drop_cut_faces", "merge", "plan_windows", "to_frame"]


@dataclass(frozen=True)
class CropWindows:
    """The square windows cut out of one frame.

    Attributes
    ----------
    xyxy : ndarray
        An ``(M, 4)`` int64 array of windows ``(x0, y0, x1, y1)`` in frame pixels,
        ``frame[y0:y1, x0:x1]``; inside the frame.
    inner : ndarray
        An ``(M, 4)`` bool array: whether the window's left, top, right and
        bottom sides lie inside the frame (not on its edge).
    input_size : ndarray
        An ``(M,)`` int64 array: the detector input side of each crop (a
        multiple of 32).
    """

    xyxy: np.ndarray
    inner: np.ndarray
    input_size: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, np.int64).reshape(-1, 4)
        inner = np.asarray(self.inner, bool).reshape(-1, 4)
        size = np.asarray(self.input_size, np.int64).reshape(-1)
        if len(inner) != len(xyxy) or len(size) != len(xyxy):
            raise ValueError(f"inner and input_size must have {len(xyxy)} rows, got {inner.shape} and {size.shape}")
        if np.any(xyxy[:, 2] <= xyxy[:, 0]) or np.any(xyxy[:, 3] <= xyxy[:, 1]):
            raise ValueError("every window must have x1 > x0 and y1 > y0")
        if np.any(size < 32) or np.any(size % 32):
            raise ValueError(f"every input_size must be a positive multiple of 32, got {size.tolist()}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "input_size", size)

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def input_pixels(self) -> int:
        """The detector input pixels of all the crops together (their cost, against a full frame's)."""
        return int(np.sum(self.input_size ** 2))

    def cut(self, frame: np.ndarray) -> List[np.ndarray]:
        """The crops of an ``(H, W, 3)`` frame, one ``(h, w, 3)`` view per window."""
        return [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in self.xyxy]


def plan_windows(predicted_xyxy: np.ndarray, width: int, height: int, *, margin: float,
                 min_side: int, input_size: int = 128, min_scale: float = 0.0) -> CropWindows:
    """One square window per predicted box, centred on it, shifted to stay inside the frame.

    Parameters
    ----------
    predicted_xyxy : ndarray
        ``(N, 4)`` predicted boxes in frame pixels.
    width, height : int
        The frame's size in pixels.
    margin : float
        Window side in face sizes (the box's longer side).
    min_side : int
        Smallest window side in pixels. No side exceeds ``min(width, height)``.
    input_size : int
        The smallest detector input side of a crop (a multiple of 32).
    min_scale : float
        Input pixels per frame pixel below which no crop is shrunk (the full
        frame's scale): a crop's input side is ``input_size`` or ``side *
        min_scale`` rounded up to a multiple of 32, whichever is larger.

    Returns
    -------
    CropWindows
        ``N`` windows, in the order of the boxes.
    """
    boxes = np.asarray(predicted_xyxy, np.float64).reshape(-1, 4)
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    side = np.clip(np.round(margin * size), min_side, min(width, height)).astype(np.int64)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0
    x0 = np.clip(np.round(cx - side / 2.0).astype(np.int64), 0, width - side)
    y0 = np.clip(np.round(cy - side / 2.0).astype(np.int64), 0, height - side)
    xyxy = np.stack([x0, y0, x0 + side, y0 + side], axis=1)
    inner = np.stack([x0 > 0, y0 > 0, x0 + side < width, y0 + side < height], axis=1)
    sizes = np.maximum(input_size, 32 * np.ceil(side * min_scale / 32.0 - 1e-9)).astype(np.int64)
    return CropWindows(xyxy, inner, sizes)


def to_frame(detections: Detections, window_xyxy: np.ndarray) -> Detections:
    """The detections of one crop with boxes and landmarks in frame pixels (an exact offset)."""
    x0, y0 = float(window_xyxy[0]), float(window_xyxy[1])
    xyxy = detections.xyxy + np.asarray([x0, y0, x0, y0], np.float32)
    landmarks = None if detections.landmarks is None else detections.landmarks + np.asarray([x0, y0], np.float32)
    return Detections(xyxy, detections.confidence, landmarks=landmarks)


def drop_cut_faces(detections: Detections, window_xyxy: np.ndarray, inner: np.ndarray,
                   tolerance: float) -> Detections:
    """Drop faces (in frame pixels) within ``tolerance`` px of a window side that lies inside the frame."""
    b, w = detections.xyxy, np.asarray(window_xyxy, np.float32)
    near = np.stack([b[:, 0] - w[0] <= tolerance, b[:, 1] - w[1] <= tolerance,
                     w[2] - b[:, 2] <= tolerance, w[3] - b[:, 3] <= tolerance], axis=1)
    return detections[~np.any(near & np.asarray(inner, bool)[None, :], axis=1)]


def merge(parts: Sequence[Detections], iou_threshold: float) -> Detections:
    """The faces of several crops as one frame's detections.

    Greedy non-maximum suppression: a face overlapping a higher-scoring one by
    more than ``iou_threshold`` IoU is the same face seen from another window.
    The result is in descending score order with ``det_index`` ``arange(N)``.
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        return Detections.empty(with_landmarks=True)
    xyxy = np.concatenate([p.xyxy for p in parts])
    conf = np.concatenate([p.confidence for p in parts])
    landmarks = None if any(p.landmarks is None for p in parts) else np.concatenate([p.landmarks for p in parts])
    order = np.argsort(-conf, kind="stable")
    iou = iou_matrix(xyxy[order], xyxy[order])
    keep: List[int] = []
    for i in range(len(order)):
        if all(iou[i, k] <= iou_threshold for k in keep):
            keep.append(i)
    rows = order[keep]
    return Detections(xyxy[rows], conf[rows], landmarks=None if landmarks is None else landmarks[rows])


class CropDetection:
    """Detect the tracked faces inside crops around their predicted boxes.

    Parameters
    ----------
    input_size : int
        Detector input side for the crops in pixels (a positive multiple of 32).
    margin : float
        Window side in face sizes (``> 1``): how far a face may move between
        two detections and still be inside its window.
    min_side : int
        Smallest window side in pixels (``>= 8``); a window around a smaller
        face is this wide, so a 10 px face is not upscaled to fill the input.
    merge_iou : float
        IoU in [0, 1] above which two faces from overlapping windows are one.
    edge_tolerance : float
        A face this close (px, ``>= 0``) to a window side inside the frame was
        cut by the crop and is dropped.
    min_scale : float
        A crop is shown to the detector at no less than this fraction (``> 0``)
        of the full frame's scale (1: a large face keeps its full-frame size and
        score; 0.5: half of it, cheaper crops around large faces).
    """

    def __init__(self, input_size: int = 128, margin: float = 3.0, min_side: int = 48,
                 merge_iou: float = 0.45, edge_tolerance: float = 1.0, min_scale: float = 1.0) -> None:
        self.input_size = check_int("input_size", input_size, 32)
        if self.input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {input_size!r}")
        self.margin = check_number("margin", margin, 1, low_open=True)
        self.min_side = check_int("min_side", min_side, 8)
        self.merge_iou = check_number("merge_iou", merge_iou, 0, 1)
        self.edge_tolerance = check_number("edge_tolerance", edge_tolerance, 0)
        self.min_scale = check_number("min_scale", min_scale, 0, low_open=True)

    def plan(self, predicted_xyxy: np.ndarray, width: int, height: int, full_scale: float = 0.0) -> CropWindows:
        """The windows around ``(N, 4)`` predicted boxes in a ``width`` x ``height`` frame whose
        full-frame pass has ``full_scale`` input pixels per frame pixel (:func:`plan_windows` with
        this policy's margin and sizes, and ``min_scale`` times ``full_scale``)."""
        return plan_windows(predicted_xyxy, width, height, margin=self.margin, min_side=self.min_side,
                            input_size=self.input_size, min_scale=self.min_scale * full_scale)

    def detect(self, detector, frame: np.ndarray, windows: CropWindows) -> Detections:
        """The faces found in ``windows`` of ``frame``, in frame pixels.

        Parameters
        ----------
        detector
            Has ``detect_crops(crops, input_size) -> list of Detections``
            (:meth:`models.detector.FaceDetector.detect_crops`); called once per
            distinct input side.
        frame : ndarray
            The ``(H, W, 3)`` BGR frame.
        windows : CropWindows
            From :meth:`plan` (at least one).

        Returns
        -------
        Detections
            One frame's detections, as the full-frame detector returns them
            (descending score, ``det_index`` ``arange(N)``, landmarks kept).
        """
        if len(windows) == 0:
            raise ValueError("windows must hold at least one window")
        crops = windows.cut(frame)
        parts: List[Detections] = []
        for size in np.unique(windows.input_size):
            rows = np.flatnonzero(windows.input_size == size)
            found = detector.detect_crops([crops[r] for r in rows], int(size))
            if len(found) != len(rows):
                raise RuntimeError(f"detect_crops returned {len(found)} results for {len(rows)} crops")
            parts += [drop_cut_faces(to_frame(d, windows.xyxy[r]), windows.xyxy[r], windows.inner[r],
                                     self.edge_tolerance) for d, r in zip(found, rows)]
        return merge(parts, self.merge_iou)
