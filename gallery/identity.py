"""What the identifier says about one track: :class:`Identity`, and :data:`UNKNOWN` before any evidence."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gallery.unknown_index import UNKNOWN_LABEL


@dataclass(frozen=True)
class Identity:
    """What the identifier says about one track.

    Attributes
    ----------
    name : str or None
        The person's name, ``None`` for Unknown.
    score : float
        Cosine similarity of the track's mean embedding to ``name`` (to the
        best person when Unknown, to the Unknown cluster's centroid with
        ``unknown_id``); 0.0 before any evidence.
    margin : float
        ``score`` minus the best other person's score.
    observations : int
        Pieces of evidence gathered (matched frames of good enough quality).
    posterior : float
        With the evidence rule: the open-set posterior of ``name`` (or of the
        most probable person when Unknown); NaN with the mean rule.
    unknown_id : int or None
        When Unknown: the persistent Unknown cluster the track matches
        (:mod:`gallery.unknowns`), None when it matches none.
    """

    name: Optional[str]
    score: float
    margin: float
    observations: int
    posterior: float = float("nan")
    unknown_id: Optional[int] = None

    @property
    def label(self) -> Optional[str]:
        """What is shown: the name, ``Unknown #<id>`` for a known Unknown, None for Unknown."""
        if self.name is not None or self.unknown_id is None:
            return self.name
        return UNKNOWN_LABEL.format(self.unknown_id)


UNKNOWN = Identity(name=None, score=0.0, margin=0.0, observations=0)
