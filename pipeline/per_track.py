"""Per-track memory of the pipeline's policies: a value per track id, dropped when the track goes."""
from __future__ import annotations

from typing import Dict, Generic, Iterable, TypeVar

T = TypeVar("T")


class PerTrack(Generic[T]):
    """Values by track id, forgotten when the tracker reports the track lost or ended, or no longer has it."""

    def __init__(self) -> None:
        self._by_id: Dict[int, T] = {}

    def forget(self, track_ids: Iterable[int]) -> None:
        """Forget these tracks (lost or ended)."""
        for tid in track_ids:
            self._by_id.pop(tid, None)

    def keep(self, track_ids: Iterable[int]) -> None:
        """Forget every track not in ``track_ids``."""
        alive = set(track_ids)
        for tid in [t for t in self._by_id if t not in alive]:
            del self._by_id[tid]

    def clear(self) -> None:
        self._by_id.clear()
