"""Box formats and conversions, written once for the whole project.

Formats
-------
xyxy : ``(x1, y1, x2, y2)``, top-left and bottom-right corners in pixels.
tlwh : ``(x1, y1, w, h)``, top-left corner, width and height.
xyah : ``(cx, cy, a, h)``, box centre, aspect ratio ``a = w / h`` and height
       (the Kalman filter's measurement space, as in deep_sort).

Every function takes an ``(N, 4)`` array (or a single ``(4,)`` box) and
returns the same leading shape, as float64.
"""
from __future__ import annotations

import numpy as np


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.shape[-1] != 4:
        raise ValueError(f"boxes must have 4 columns, got shape {arr.shape}")
    return arr


def xyxy_to_tlwh(boxes: np.ndarray) -> np.ndarray:
    """Convert ``xyxy`` boxes to ``tlwh``."""
    b = _as_boxes(boxes).copy()
    b[..., 2:] -= b[..., :2]
    return b


def tlwh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert ``tlwh`` boxes to ``xyxy``."""
    b = _as_boxes(boxes).copy()
    b[..., 2:] += b[..., :2]
    return b


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """Convert ``xyxy`` boxes to ``xyah`` (centre x, centre y, w/h, h)."""
    b = _as_boxes(boxes)
    w = b[..., 2] - b[..., 0]
    h = b[..., 3] - b[..., 1]
    out = np.empty_like(b)
    out[..., 0] = b[..., 0] + w / 2.0
    out[..., 1] = b[..., 1] + h / 2.0
    out[..., 2] = w / np.maximum(h, 1e-12)
    out[..., 3] = h
    return out


def xyah_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert ``xyah`` boxes to ``xyxy``."""
    b = _as_boxes(boxes)
    h = b[..., 3]
    w = b[..., 2] * h
    out = np.empty_like(b)
    out[..., 0] = b[..., 0] - w / 2.0
    out[..., 1] = b[..., 1] - h / 2.0
    out[..., 2] = b[..., 0] + w / 2.0
    out[..., 3] = b[..., 1] + h / 2.0
    return out


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of ``xyxy`` boxes, ``(N,)``; degenerate boxes have area 0."""
    b = _as_boxes(boxes)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of two sets of ``xyxy`` boxes.

    Parameters
    ----------
    boxes_a : ndarray
        An ``(N, 4)`` array of ``xyxy`` boxes.
    boxes_b : ndarray
        An ``(M, 4)`` array of ``xyxy`` boxes.

    Returns
    -------
    ndarray
        An ``(N, M)`` matrix of IoU values in ``[0, 1]``.
    """
    a = _as_boxes(boxes_a).reshape(-1, 4)
    b = _as_boxes(boxes_b).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(br - tl, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def clip_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``xyxy`` boxes to an image of ``width`` x ``height`` pixels."""
    b = _as_boxes(boxes).copy()
    b[..., [0, 2]] = np.clip(b[..., [0, 2]], 0, width)
    b[..., [1, 3]] = np.clip(b[..., [1, 3]], 0, height)
    return b
