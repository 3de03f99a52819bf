"""Privacy on the output: faces blurred in the frame before the overlay draws on it and the sinks write it.

Three policies, as insightface's PrivateFrame has: ``"none"`` (the default),
``"unknown"`` (every face the gallery did not name) and ``"all"``. The faces
are the boxes the pipeline shows for its tracks on every frame
(:class:`pipeline.results.FrameResult`: the detection's box on a detection
frame, the extrapolated one in between), so a face stays covered on the
frames where the detector did not run. On detection frames the detector's
boxes are blurred too unless they belong to a named track, so a face the
tracker has not confirmed yet (its first frames) is never shown either. Each
box is enlarged by ``margin`` of its size on every side (hair, ears, and the
motion between an extrapolated box and the face), and its pixels are replaced
by a coarse mosaic of ``cells`` blocks across its short side, smoothed:
nothing of the face's detail is left to read.

A face the pipeline does not know of yet is not covered: one that enters
between two detection frames (``pipeline.detect_interval``) or that the
detector misses stays sharp until a detection finds it. On the hand-labelled
Hamilton clip that is one face of 33 (a profile first detected on the frame
after its label); ``detect_interval: 1`` narrows the gap to the detector's misses.
"""
from __future__ import annotations

import cv2
import numpy as np

from tracker.boxes import iou_matrix
from tracker.checks import check_choice, check_int, check_number

#: The blur policies, in the order of ``--blur``'s choices.
BLUR_MODES = ("none", "unknown", "all")
#: A detection overlapping a named track's box this much (IoU) is that named face, not another one.
SAME_FACE_IOU = 0.3


class FaceBlur:
    """Blur the faces of a frame by policy.

    Parameters
    ----------
    mode : {"none", "unknown", "all"}
        Which faces: none, those without a name (Unknown, or not yet decided), or every face.
    margin : float
        Fraction of a box's width (height) added on its left and right (top and bottom).
    cells : int
        Mosaic blocks across the short side of an enlarged box (>= 1; fewer is coarser).
    """

    def __init__(self, *, mode: str = "none", margin: float = 0.25, cells: int = 6) -> None:
        self.mode = check_choice("mode", mode, BLUR_MODES)
        self.margin = check_number("margin", margin, 0)
        self.cells = check_int("cells", cells, 1)

    @property
    def active(self) -> bool:
        """True unless the policy is ``"none"``."""
        return self.mode != "none"

    def boxes(self, result) -> np.ndarray:
        """``(K, 4)`` float32 boxes to blur on the frame of ``result`` (before the margin)."""
        if not self.active:
            return np.zeros((0, 4), np.float32)
        shown = np.asarray(result.xyxy, np.float32).reshape(-1, 4)
        named = np.asarray([n is not None for n in result.names], bool)
        faces = shown if self.mode == "all" else shown[~named]
        detections = getattr(result, "detections", None)
        if detections is None or len(detections) == 0:
            return faces
        found = np.asarray(detections.xyxy, np.float32).reshape(-1, 4)
        if self.mode == "unknown" and named.any():
            found = found[iou_matrix(found, shown[named]).max(axis=1) < SAME_FACE_IOU]
        return np.concatenate([faces, found])

    def apply(self, image: np.ndarray, result) -> int:
        """Blur ``image`` in place (BGR, ``H x W x C``) for ``result``; returns the number of regions blurred."""
        count = 0
        for box in self.enlarged(self.boxes(result), image.shape[1], image.shape[0]):
            x0, y0, x1, y1 = box
            region = image[y0:y1, x0:x1]
            h, w = region.shape[:2]
            step = max(1.0, min(w, h) / self.cells)
            small = cv2.resize(region, (max(1, round(w / step)), max(1, round(h / step))),
                               interpolation=cv2.INTER_AREA)
            mosaic = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
            k = 2 * int(step // 2) + 1
            region[...] = cv2.GaussianBlur(mosaic, (k, k), 0) if k > 1 else mosaic
            count += 1
        return count

    def enlarged(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """``(K, 4)`` int pixel boxes grown by ``margin`` on each side and clipped to the frame (empty ones dropped)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        grow = np.concatenate([-(boxes[:, 2:] - boxes[:, :2]), boxes[:, 2:] - boxes[:, :2]], axis=1) * self.margin
        grown = boxes + grow
        out = np.stack([np.floor(grown[:, 0]), np.floor(grown[:, 1]), np.ceil(grown[:, 2]), np.ceil(grown[:, 3])],
                       axis=1)
        out = np.clip(out, 0, [width, height, width, height]).astype(np.int64)
        return out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]
