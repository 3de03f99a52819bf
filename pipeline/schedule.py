"""When to run the detector: every k-th frame, every cut, and more often while tracks warm up."""
from __future__ import annotations

from typing import Optional

from tracker.checks import check_int


class DetectionSchedule:
    """Decides, frame by frame, whether the detector runs.

    Parameters
    ----------
    detect_interval : int
        Detect on every k-th frame (``>= 1``; 1 = every frame), and on every cut.
    warmup_detect_interval : int
        The interval while :attr:`warming_up` is set (a young track, or a
        face moving fast), in ``[1, detect_interval]``.
    """

    def __init__(self, detect_interval: int = 3, warmup_detect_interval: int = 1) -> None:
        self.detect_interval = check_int("detect_interval", detect_interval, 1)
        self.warmup_detect_interval = check_int("warmup_detect_interval", warmup_detect_interval, 1,
                                                self.detect_interval)
        self.warming_up = False
        self.last_detect_frame: Optional[int] = None

    def due(self, frame_index: int, cut: bool = False) -> bool:
        """Whether the detector runs on ``frame_index`` (a cut always detects)."""
        interval = self.warmup_detect_interval if self.warming_up else self.detect_interval
        last = self.last_detect_frame
        return cut or last is None or frame_index - last >= interval or frame_index < last

    def detected(self, frame_index: int) -> int:
        """Record a detection on ``frame_index``; returns the frames elapsed since the previous one (>= 1)."""
        previous, self.last_detect_frame = self.last_detect_frame, frame_index
        return 1 if previous is None or frame_index <= previous else frame_index - previous

    def reset(self) -> None:
        """A new source: detect on the next frame."""
        self.warming_up = False
        self.last_detect_frame = None
