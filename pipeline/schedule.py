"""When to run the detector: every k-th frame, every cut, and more often while tracks warm up;
and which of those detections look at the whole frame."""
from __future__ import annotations

from typing import Optional

from tracker.checks import check_int


class DetectionSchedule:
    """Decides, frame by frame, whether the detector runs, and whether on the whole frame.

    Parameters
    ----------
    detect_interval : int
        Detect on every k-th frame (``>= 1``; 1 = every frame), and on every cut.
    warmup_detect_interval : int
        The interval while :attr:`warming_up` is set (a young track, or a
        face moving fast), in ``[1, detect_interval]``.
    full_frame_interval : int
        A detection looks at the whole frame when this many frames (``>= 1``)
        have passed since the last full-frame one, on cuts and on the first
        frame; the others may look only around the tracks
        (:mod:`pipeline.crops`). 1 = every detection is a full frame.
    """

    def __init__(self, detect_interval: int = 3, warmup_detect_interval: int = 1,
                 full_frame_interval: int = 1) -> None:
        self.detect_interval = check_int("detect_interval", detect_interval, 1)
        self.warmup_detect_interval = check_int("warmup_detect_interval", warmup_detect_interval, 1,
                                                self.detect_interval)
        self.full_frame_interval = check_int("full_frame_interval", full_frame_interval, 1)
        self.warming_up = False
        self.last_detect_frame: Optional[int] = None
        self.last_full_frame: Optional[int] = None

    def due(self, frame_index: int, cut: bool = False) -> bool:
        """Whether the detector runs on ``frame_index`` (a cut always detects)."""
        interval = self.warmup_detect_interval if self.warming_up else self.detect_interval
        last = self.last_detect_frame
        return cut or last is None or frame_index - last >= interval or frame_index < last

    def full_due(self, frame_index: int, cut: bool = False) -> bool:
        """Whether a detection on ``frame_index`` must look at the whole frame (cuts always do)."""
        last = self.last_full_frame
        return cut or last is None or frame_index - last >= self.full_frame_interval or frame_index < last

    def detected(self, frame_index: int, full: bool = True) -> int:
        """Record a detection (``full``: on the whole frame) on ``frame_index``; returns the frames
        elapsed since the previous detection of either kind (>= 1)."""
        previous, self.last_detect_frame = self.last_detect_frame, frame_index
        if full:
            self.last_full_frame = frame_index
        return 1 if previous is None or frame_index <= previous else frame_index - previous

    def reset(self) -> None:
        """A new source: detect on the whole next frame."""
        self.warming_up = False
        self.last_detect_frame = None
        self.last_full_frame = None
