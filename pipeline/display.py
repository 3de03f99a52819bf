"""The boxes shown between detections: each shown track's last detection box, extrapolated.

On a detection frame a matched track is shown with its detection's box (the
Kalman box lags behind a face whose box changes shape quickly, e.g. sliding in
at the frame edge). On the frames in between, the box moves on with the
velocity measured between the track's last two detection boxes. This is
display only: association and embedding reuse use the tracker's own state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from pipeline.per_track import PerTrack


@dataclass
class _Shown:
    box: np.ndarray        # (4,) xyxy shown at `frame`
    frame: int
    velocity: np.ndarray   # (4,) xyxy change per frame
    confidence: float


class ShownBoxes(PerTrack[_Shown]):
    """Last shown box, velocity and detector score of every shown track, by track id."""

    def __init__(self) -> None:
        super().__init__()

    def observe(self, track_id: int, box: np.ndarray, confidence: float, frame: int, *, restart: bool) -> None:
        """A detection frame showed ``track_id`` at ``box``; ``restart`` forgets its motion (a cut, a revival)."""
        box = np.asarray(box, np.float32).reshape(4)
        memo = self._by_id.get(track_id)
        if memo is None or restart:
            self._by_id[track_id] = _Shown(box, frame, np.zeros(4, np.float32), confidence)
            return
        gap = frame - memo.frame
        if gap > 0:
            memo.velocity = ((box - memo.box) / gap).astype(np.float32)
        memo.box, memo.frame, memo.confidence = box, frame, confidence

    def boxes(self, track_ids: Sequence[int], frame: int) -> np.ndarray:
        """``(N, 4)`` float32 boxes of ``track_ids`` extrapolated to ``frame``."""
        if not track_ids:
            return np.zeros((0, 4), np.float32)
        return np.asarray([self._by_id[t].box + self._by_id[t].velocity * (frame - self._by_id[t].frame)
                           for t in track_ids], np.float32)

    def confidence(self, track_ids: Sequence[int]) -> np.ndarray:
        """``(N,)`` float32 detector scores of the tracks' last detections."""
        return np.asarray([self._by_id[t].confidence for t in track_ids], np.float32)

    def moving_fast(self, track_ids: Iterable[int], interval: int, fraction: float) -> bool:
        """Some track's box moves more than ``fraction`` of its width per ``interval`` frames."""
        if fraction <= 0 or interval == 1:
            return False
        for tid in track_ids:
            memo = self._by_id[tid]
            width = float(memo.box[2] - memo.box[0])
            if float(np.abs(memo.velocity[[0, 2]]).max()) * interval > fraction * max(width, 1.0):
                return True
        return False
