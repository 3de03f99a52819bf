"""The mean rule's naming threshold for a track's face size and the gallery's size.

One cosine threshold for every face cannot serve both ends of a broadcast:
a 24 px face of the right person scores about 0.2 against their template,
a 112 px one about 0.75, while somebody who is not enrolled scores about 0
against every template, with the same spread at every size
(``docs/degraded_pairs.md``). So the threshold follows the right person
down as faces get smaller, and stops where strangers start:

``t(h, N) = max(floor(N), min(ceiling, same(h) - frame_std(h)))``

* ``same(h) - frame_std(h)``: one spread below where the right person's
  face of height ``h`` scores (the measured table, interpolated in height);
* ``ceiling``: the threshold of large faces (the Identifier's
  ``similarity_threshold``), which their scores clear with room to spare;
* ``floor(N) = different_spread * z(1 - stranger_match_rate / N)``: the
  similarity that the best of ``N`` enrolled people reaches for a stranger
  with probability ``stranger_match_rate`` when each different-person
  similarity is normal with spread ``different_spread`` (a union bound over
  the gallery). It grows with the gallery, so a large gallery gets a
  stricter threshold at every face size, above ``ceiling`` when needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Tuple

import numpy as np

from tracker.checks import check_number


@dataclass(frozen=True)
class SizeAwareThreshold:
    """The threshold of a track of faces of height ``h`` in a gallery of ``N`` people.

    Attributes
    ----------
    heights : tuple of float
        ``(K,)`` increasing face-box heights in pixels of the table.
    same_mean, frame_std : tuple of float
        ``(K,)`` mean similarity of a face of that height to the right
        person's template, and its spread (the evidence table).
    different_spread : float
        Spread of the similarity of two different people, ``> 0``.
    stranger_match_rate : float
        Chance, in ``(0, 1)``, that a stranger's track reaches the floor.
    ceiling : float
        The largest threshold below the floor (the large-face threshold).
    """

    heights: Tuple[float, ...]
    same_mean: Tuple[float, ...]
    frame_std: Tuple[float, ...]
    different_spread: float
    stranger_match_rate: float
    ceiling: float

    def __post_init__(self) -> None:
        h = np.asarray(self.heights, float)
        if h.ndim != 1 or len(h) < 1 or np.any(np.diff(h) <= 0):
            raise ValueError(f"heights must be increasing, got {self.heights}")
        if len(self.same_mean) != len(h) or len(self.frame_std) != len(h):
            raise ValueError(f"same_mean and frame_std need {len(h)} values, one per height")
        check_number("different_spread", self.different_spread, 0, low_open=True)
        check_number("stranger_match_rate", self.stranger_match_rate, 0, 1, low_open=True, high_open=True)
        check_number("ceiling", self.ceiling, -1, 1)

    def floor(self, gallery_size: int) -> float:
        """The similarity the best of ``gallery_size`` people reaches for a stranger at the set rate."""
        n = max(int(gallery_size), 1)
        return self.different_spread * NormalDist().inv_cdf(1.0 - self.stranger_match_rate / n)

    def at(self, height: float, gallery_size: int) -> float:
        """``t(height, gallery_size)``; a height outside the table takes its nearest end."""
        expected = float(np.interp(height, self.heights, np.subtract(self.same_mean, self.frame_std)))
        return max(self.floor(gallery_size), min(self.ceiling, expected))
