"""Scenes from shots: threading shots that share a camera set-up, live.

A broadcast scene is a handful of people filmed from a few set-ups; the
editor cuts back and forth between them (wide, close-up A, close-up B, wide).
Each new shot's first frame (its colour histogram, the one the cut detector
already computed) is compared with the first frames of the recent shots. A
shot close enough to an earlier one *threads* to it, as in pyannote-video's
shot threading, and every shot between the two belongs to the same scene:
a scene boundary is a cut that no thread crosses. A shot that threads to
nothing recent starts a new scene.

Live, the future is unknown, so a shot that starts a new scene may later be
joined to the previous one when a following shot threads across it; the
scene ids of earlier shots can only merge, never split. :meth:`scene_of`
answers for any shot seen so far.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np

from tracker.checks import check_int, check_number

#: ``distance(hist_a, hist_b) -> float`` in ``[0, 1]`` (the cut detector's Bhattacharyya distance).
HistogramDistance = Callable[[np.ndarray, np.ndarray], float]


class SceneThreader:
    """Group shots into scenes by threading their first frames.

    Parameters
    ----------
    distance : callable
        ``distance(hist_a, hist_b)`` between two shot histograms in ``[0, 1]``.
    max_distance : float
        Shots whose first frames are at most this far apart share a set-up, in ``(0, 1)``.
    window_shots : int
        How many recent shots a new shot may thread to (>= 1); older ones belong to past scenes.
    """

    def __init__(self, distance: HistogramDistance, *, max_distance: float = 0.3, window_shots: int = 12) -> None:
        if not callable(distance):
            raise ValueError("distance must be callable(hist_a, hist_b) -> float")
        self.distance = distance
        self.max_distance = check_number("max_distance", max_distance, 0, 1, low_open=True, high_open=True)
        self.window_shots = check_int("window_shots", window_shots, 1)
        self._keyframes: List[np.ndarray] = []
        self._parent: List[int] = []        # union-find over shots; the root's scene id is its scene

    @property
    def shot(self) -> int:
        """Index of the current shot (-1 before the first)."""
        return len(self._keyframes) - 1

    def new_shot(self, histogram: np.ndarray) -> int:
        """Start a shot whose first frame has ``histogram``; returns the shot's index."""
        shot = len(self._keyframes)
        self._keyframes.append(np.asarray(histogram, np.float32))
        self._parent.append(shot)
        first = max(0, shot - self.window_shots)
        best, best_distance = None, self.max_distance
        for earlier in range(shot - 1, first - 1, -1):
            d = float(self.distance(self._keyframes[earlier], self._keyframes[shot]))
            if d <= best_distance:
                best, best_distance = earlier, d
        if best is not None:
            for between in range(best, shot + 1):
                self._union(best, between)
        self._forget_before(first)
        return shot

    def scene_of(self, shot: int) -> int:
        """The scene id of a shot seen so far (the index of its scene's first shot)."""
        if not 0 <= shot < len(self._parent):
            raise KeyError(f"shot {shot} has not been seen")
        root = shot
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[shot] != root:                  # path compression
            self._parent[shot], shot = root, self._parent[shot]
        return root

    def same_scene(self, shot_a: Optional[int], shot_b: Optional[int]) -> bool:
        """Whether two shots (None: unknown) are in one scene."""
        if shot_a is None or shot_b is None:
            return False
        return self.scene_of(shot_a) == self.scene_of(shot_b)

    @property
    def scene(self) -> int:
        """Scene id of the current shot (-1 before the first)."""
        return self.scene_of(self.shot) if self._keyframes else -1

    def reset(self) -> None:
        """Forget every shot (a new source)."""
        self._keyframes.clear()
        self._parent.clear()

    def _union(self, a: int, b: int) -> None:
        ra, rb = self.scene_of(a), self.scene_of(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)         # the earlier shot names the scene

    def _forget_before(self, first: int) -> None:
        """Drop the histograms of shots nothing can thread to any more (their scene ids stay)."""
        for old in range(first - 1, -1, -1):
            if self._keyframes[old].size == 0:
                break
            self._keyframes[old] = np.zeros(0, np.float32)
