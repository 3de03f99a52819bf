"""Snapshots: the best face crop of each appearance, saved as a JPEG beside the events file.

The *best* crop of an appearance is the one from the frame where the face's
box came from a detection (not from the Kalman prediction between
detections) and had the largest area times detector confidence: the largest,
surest view of the face. Frames with predicted boxes are used only while the
appearance has no detected one. The crop is the box grown by
``margin`` of its size on each side, clipped to the frame.

Snapshots are biometric data: each file is written to a temporary name with
mode ``0600`` and moved into place (``os.replace``), so a reader never sees a
half-written JPEG and nobody else can read it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from models.io import write_private
from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

#: Permission bits of snapshot files (owner only).
SNAPSHOT_MODE = 0o600


class SnapshotKeeper:
    """Keep the best crop of each open appearance and save it as ``<prefix>-track<id>-<n>.jpg``.

    Parameters
    ----------
    folder : str or Path
        Where the JPEGs go (the events file's folder).
    prefix : str
        Start of every file name (the events file's stem).
    margin : float
        Fraction of the box's width and height added on each side of the crop (>= 0).
    jpeg_quality : int
        JPEG quality, 1-100.
    """

    def __init__(self, folder, prefix: str, *, margin: float = 0.2, jpeg_quality: int = 90) -> None:
        self.folder = Path(folder)
        self.prefix = str(prefix)
        self.margin = check_number("margin", margin, 0)
        self.jpeg_quality = check_int("jpeg_quality", jpeg_quality, 1, 100)
        #: key -> (rank, crop): rank is (detected, area x confidence).
        self._best: Dict[Tuple[int, int], Tuple[Tuple[bool, float], np.ndarray]] = {}

    def file_name(self, track_id: int, number: int) -> str:
        """The file name (no folder) of appearance ``number`` (1-based in the run) of ``track_id``."""
        return f"{self.prefix}-track{int(track_id)}-{int(number)}.jpg"

    def offer(self, key: Tuple[int, int], image: np.ndarray, xyxy, confidence: float, predicted: bool) -> bool:
        """Keep this frame's crop of ``key`` (track id, appearance number) if it is the best so far.

        ``image`` is the frame before drawing; the crop is copied. Returns True when it was kept.
        """
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        conf = float(confidence) if np.isfinite(confidence) else 0.0
        rank = (not bool(predicted), area * conf)
        best = self._best.get(key)
        if best is not None and best[0] >= rank:
            return False
        crop = self._crop(image, (x1, y1, x2, y2))
        if crop is None:
            return False
        self._best[key] = (rank, crop)
        return True

    def _crop(self, image: np.ndarray, box) -> Optional[np.ndarray]:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = box
        mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        left, top = int(max(0, np.floor(x1 - mx))), int(max(0, np.floor(y1 - my)))
        right, bottom = int(min(w, np.ceil(x2 + mx))), int(min(h, np.ceil(y2 + my)))
        if right <= left or bottom <= top:
            return None
        return image[top:bottom, left:right].copy()

    def save(self, key: Tuple[int, int]) -> Optional[str]:
        """Write the best crop of ``key`` (replacing an earlier one); its file name, or None without a crop."""
        best = self._best.get(key)
        if best is None:
            return None
        ok, jpeg = cv2.imencode(".jpg", best[1], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:  # pragma: no cover - OpenCV always encodes a non-empty uint8 image
            return None
        name = self.file_name(*key)
        write_private(self.folder / name, jpeg.tobytes(), SNAPSHOT_MODE)
        return name

    def forget(self, key: Tuple[int, int]) -> None:
        """Drop the crop of an appearance that ended (its file stays)."""
        self._best.pop(key, None)
