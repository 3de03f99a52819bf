"""The lost-track buffer: confirmed tracks that left the active set, kept for re-identification.

Bounded in count and in age. The tracker decides what goes in and comes out;
the buffer only stores tracks by id, in the order they were lost, with the
frame each was lost on.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional

from tracker.checks import check_int
from tracker.track import Track


class LostBuffer:
    """Lost tracks by id, oldest loss first.

    Parameters
    ----------
    max_size : int
        Most tracks kept (``>= 0``); the oldest losses are dropped first.
    max_age : int
        Frames a track is kept after its loss (``>= 0``).
    """

    def __init__(self, max_size: int = 100, max_age: int = 1500) -> None:
        self.max_size = check_int("lost_buffer_size", max_size, 0)
        self.max_age = check_int("lost_max_age", max_age, 0)
        self._tracks: "OrderedDict[int, Track]" = OrderedDict()
        self._since: Dict[int, int] = {}

    @property
    def enabled(self) -> bool:
        """Whether the buffer keeps anything at all."""
        return self.max_size > 0 and self.max_age > 0

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._tracks

    def get(self, track_id: int) -> Optional[Track]:
        """The lost track of this id, or None."""
        return self._tracks.get(track_id)

    def tracks(self) -> List[Track]:
        """The lost tracks, oldest loss first."""
        return list(self._tracks.values())

    def ids(self) -> List[int]:
        """Their ids, oldest loss first."""
        return list(self._tracks)

    def add(self, track: Track, frame: int) -> None:
        """Keep ``track`` (marked lost) from ``frame`` on."""
        track.mark_lost()
        self._tracks[track.track_id] = track
        self._since[track.track_id] = frame

    def pop(self, track_id: int) -> Track:
        """Take a track out (revived or taken over by another track)."""
        self._since.pop(track_id, None)
        return self._tracks.pop(track_id)

    def age(self, frames: int) -> None:
        """Every lost track grows ``frames`` older."""
        for track in self._tracks.values():
            track.age_lost(frames)

    def expire(self, frame: int) -> List[int]:
        """End the tracks older than ``max_age`` at ``frame``, then the oldest beyond ``max_size``.

        Returns
        -------
        list of int
            The ids ended, in that order; their tracks are marked deleted.
        """
        expired = [tid for tid, since in self._since.items() if frame - since >= self.max_age]
        while len(self._tracks) - len(expired) > self.max_size:
            expired.append(next(tid for tid in self._tracks if tid not in expired))
        for tid in expired:
            self.pop(tid).mark_deleted()
        return expired

    def clear(self) -> List[int]:
        """Forget every track; returns their ids."""
        ids = list(self._tracks)
        self._tracks.clear()
        self._since.clear()
        return ids
