"""Shot-cut detection from colour-histogram differences of consecutive frames.

A hard cut in broadcast video changes the colour distribution of the whole
frame from one frame to the next, while motion inside a shot changes it
little. Each frame is downscaled, converted to HSV, summarised by a
normalised hue-saturation histogram, and compared with the previous frame's
histogram by the Bhattacharyya distance (0 = identical, 1 = disjoint). A
distance above ``threshold`` is a cut. The pipeline passes the result to the
tracker's cut mode (``Tracker.update(..., scene_cut=True)``).
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from tracker.checks import check_int, check_number


class HistogramSceneCutDetector:
    """Detect hard cuts between consecutive frames.

    Parameters
    ----------
    threshold : float
        Bhattacharyya distance between the hue-saturation histograms of two
        consecutive frames above which a cut is reported, in ``(0, 1)``
        (why 0.25: ``docs/tuning.md``).
    hue_bins : int
        Number of hue bins (>= 2).
    saturation_bins : int
        Number of saturation bins (>= 2).
    analysis_width : int
        Frames are downscaled to this width (pixels, >= 16) before the
        histogram is taken; cuts are a global property, so a small image is
        enough and keeps the cost well under a millisecond.
    min_gap_frames : int
        After a cut, no other cut is reported for this many frames (>= 0),
        so a flash or a dissolve does not fire on every frame.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.25,
        hue_bins: int = 16,
        saturation_bins: int = 8,
        analysis_width: int = 160,
        min_gap_frames: int = 5,
    ) -> None:
        self.threshold = check_number("threshold", threshold, 0, 1, low_open=True, high_open=True)
        self.hue_bins = check_int("hue_bins", hue_bins, 2)
        self.saturation_bins = check_int("saturation_bins", saturation_bins, 2)
        self.analysis_width = check_int("analysis_width", analysis_width, 16)
        self.min_gap_frames = check_int("min_gap_frames", min_gap_frames, 0)
        self._previous: Optional[np.ndarray] = None
        self._since_cut = self.min_gap_frames
        #: The distance computed on the last call to :meth:`update` (0 on the first frame).
        self.last_distance = 0.0

    def histogram(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The normalised ``(hue_bins, saturation_bins)`` float32 histogram of a BGR frame."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"frame_bgr must have shape (H, W, 3), got {frame_bgr.shape}")
        h, w = frame_bgr.shape[:2]
        if w > self.analysis_width:
            # Nearest-neighbour sampling: a histogram does not need anti-aliasing,
            # and INTER_AREA on a 4K frame costs more than everything else here.
            new_h = max(1, round(h * self.analysis_width / w))
            frame_bgr = cv2.resize(frame_bgr, (self.analysis_width, new_h), interpolation=cv2.INTER_NEAREST)
        hsv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [self.hue_bins, self.saturation_bins], [0, 180, 0, 256])
        total = float(hist.sum())
        return hist / total if total > 0 else hist

    def distance(self, hist_a: np.ndarray, hist_b: np.ndarray) -> float:
        """Bhattacharyya distance in ``[0, 1]`` between two normalised histograms."""
        return float(cv2.compareHist(hist_a, hist_b, cv2.HISTCMP_BHATTACHARYYA))

    def update(self, frame_bgr: np.ndarray) -> bool:
        """Feed the next frame; return True when it starts a new shot.

        Parameters
        ----------
        frame_bgr : ndarray
            An ``(H, W, 3)`` uint8 BGR frame.
        """
        hist = self.histogram(frame_bgr)
        previous, self._previous = self._previous, hist
        self._since_cut += 1
        if previous is None:
            self.last_distance = 0.0
            return False
        self.last_distance = self.distance(previous, hist)
        if self.last_distance > self.threshold and self._since_cut > self.min_gap_frames:
            self._since_cut = 0
            return True
        return False

    def reset(self) -> None:
        """Forget the previous frame (e.g. when the source reconnects)."""
        self._previous = None
        self._since_cut = self.min_gap_frames
        self.last_distance = 0.0
