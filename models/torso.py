"""The clothing cue: a colour descriptor of the region below each face.

Within one scene a person's clothes do not change, and the torso stays large
and colourful when the face is 20 px high or turned away. The region is
placed from the face box alone (no person detector): ``width_factor`` face
widths wide, centred under the face, starting ``top_gap`` face heights below
the chin and ``height_factor`` face heights tall, cut in an upper and a lower
half so that a shirt over trousers differs from the reverse.

Each half is summarised by an HSV histogram (hue x saturation for coloured
pixels, plus value bins for the grey ones: black, white and grey clothes have
no reliable hue). The descriptor is the square root of the normalised
histograms, concatenated and scaled to unit length, so the dot product of two
descriptors is their Bhattacharyya coefficient (1 = identical colours).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tracker.checks import check_int, check_number

#: Saturation (0-255) below which a pixel counts as grey (value bins) rather than coloured.
GREY_SATURATION = 48


@dataclass(frozen=True)
class TorsoCue:
    """Torso descriptors of one frame's faces.

    Attributes
    ----------
    descriptor : ndarray
        ``(N, D)`` float32 unit rows (zeros where not ``valid``).
    valid : ndarray
        ``(N,)`` bool: enough of the torso region lies inside the frame.
    xyxy : ndarray
        ``(N, 4)`` float32 torso regions in frame pixels (before clipping).
    """

    descriptor: np.ndarray
    valid: np.ndarray
    xyxy: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)


class TorsoDescriber:
    """Colour descriptors of the torso regions under face boxes.

    Parameters
    ----------
    width_factor : float
        Region width in face widths (> 0).
    top_gap : float
        Face heights between the bottom of the face box and the region (>= 0).
    height_factor : float
        Region height in face heights (> 0).
    hue_bins, saturation_bins, value_bins : int
        Histogram bins of coloured pixels (hue x saturation) and grey ones (value), each >= 2.
    min_visible : float
        Least fraction of the region inside the frame for a valid descriptor, in ``(0, 1]``.
    """

    def __init__(self, *, width_factor: float = 2.0, top_gap: float = 0.35, height_factor: float = 2.2,
                 hue_bins: int = 12, saturation_bins: int = 4, value_bins: int = 6,
                 min_visible: float = 0.5) -> None:
        self.width_factor = check_number("width_factor", width_factor, 0, low_open=True)
        self.top_gap = check_number("top_gap", top_gap, 0)
        self.height_factor = check_number("height_factor", height_factor, 0, low_open=True)
        self.hue_bins = check_int("hue_bins", hue_bins, 2)
        self.saturation_bins = check_int("saturation_bins", saturation_bins, 2)
        self.value_bins = check_int("value_bins", value_bins, 2)
        self.min_visible = check_number("min_visible", min_visible, 0, 1, low_open=True)

    @property
    def dimension(self) -> int:
        """Length ``D`` of one descriptor (two halves)."""
        return 2 * (self.hue_bins * self.saturation_bins + self.value_bins)

    def regions(self, face_xyxy: np.ndarray) -> np.ndarray:
        """``(N, 4)`` torso regions (xyxy, unclipped) under ``(N, 4)`` face boxes."""
        f = np.asarray(face_xyxy, np.float32).reshape(-1, 4)
        w, h = f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]
        cx = (f[:, 0] + f[:, 2]) / 2
        top = f[:, 3] + self.top_gap * h
        half = self.width_factor * w / 2
        return np.stack([cx - half, top, cx + half, top + self.height_factor * h], axis=1)

    def describe(self, frame_bgr: np.ndarray, face_xyxy: np.ndarray) -> TorsoCue:
        """The torso descriptors of the faces ``face_xyxy`` ``(N, 4)`` in an ``(H, W, 3)`` BGR frame."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"frame_bgr must have shape (H, W, 3), got {frame_bgr.shape}")
        regions = self.regions(face_xyxy)
        height, width = frame_bgr.shape[:2]
        out = np.zeros((len(regions), self.dimension), np.float32)
        valid = np.zeros(len(regions), bool)
        for i, (x1, y1, x2, y2) in enumerate(regions):
            cx1, cy1 = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
            cx2, cy2 = int(min(width, np.ceil(x2))), int(min(height, np.ceil(y2)))
            area = max(1.0, float((x2 - x1) * (y2 - y1)))
            if cx2 - cx1 < 2 or cy2 - cy1 < 4 or (cx2 - cx1) * (cy2 - cy1) / area < self.min_visible:
                continue
            hsv = cv2.cvtColor(frame_bgr[cy1:cy2, cx1:cx2], cv2.COLOR_BGR2HSV)
            middle = hsv.shape[0] // 2
            vec = np.concatenate([self._histogram(hsv[:middle]), self._histogram(hsv[middle:])])
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                out[i], valid[i] = vec / norm, True
        return TorsoCue(descriptor=out, valid=valid, xyxy=regions.astype(np.float32))

    def _histogram(self, hsv: np.ndarray) -> np.ndarray:
        """Square-rooted normalised coloured (hue x saturation) and grey (value) histogram of an HSV patch."""
        pixels = hsv.reshape(-1, 3)
        coloured = pixels[:, 1] >= GREY_SATURATION
        hue = (pixels[coloured, 0].astype(np.int32) * self.hue_bins) // 180
        sat = ((pixels[coloured, 1].astype(np.int32) - GREY_SATURATION) * self.saturation_bins) // (
            256 - GREY_SATURATION)
        colour_hist = np.bincount(hue * self.saturation_bins + sat,
                                  minlength=self.hue_bins * self.saturation_bins).astype(np.float32)
        value = (pixels[~coloured, 2].astype(np.int32) * self.value_bins) // 256
        grey_hist = np.bincount(value, minlength=self.value_bins).astype(np.float32)
        hist = np.concatenate([colour_hist, grey_hist])
        total = float(hist.sum())
        return np.sqrt(hist / total) if total > 0 else hist
