"""The typed result of one tracker update."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from tracker.track import Track


@dataclass
class TrackerUpdate:
    """What one :meth:`Tracker.update` did.

    Attributes
    ----------
    tracks : list of Track
        The active tracks after the update, tentative and confirmed;
        ``track.det_index`` is the detection each was matched with (None
        when coasting).
    lost_ids : list of int
        Confirmed tracks that left the active set and wait in the lost buffer.
    ended_ids : list of int
        Ids gone for good: tentative tracks deleted, lost tracks expired, and
        the id of a young or held track that went on under an older id.
    revived_ids : list of int
        Older ids that came back: from the lost buffer, or taken by a young
        or held track.
    """

    tracks: List[Track]
    lost_ids: List[int] = field(default_factory=list)
    ended_ids: List[int] = field(default_factory=list)
    revived_ids: List[int] = field(default_factory=list)
