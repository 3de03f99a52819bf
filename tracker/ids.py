"""Track id counters. Each tracker owns one; none is global."""
from __future__ import annotations


class IdCounter:
    """Hands out increasing integer track ids.

    A :class:`~tracker.tracker.Tracker` makes a fresh counter unless one is
    passed in, so two trackers never influence each other's ids. Pass one
    counter to several trackers (for instance one per camera feeding the same
    gallery) to make their ids disjoint.

    Parameters
    ----------
    start : int
        The first id handed out (``>= 0``).

    Raises
    ------
    ValueError
        If ``start`` is not a non-negative integer.
    """

    def __init__(self, start: int = 1) -> None:
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be an integer >= 0, got {start!r}")
        self.start = start
        self._next = start

    def next_id(self) -> int:
        """Return a new id, never handed out before by this counter (until :meth:`reset`)."""
        value = self._next
        self._next += 1
        return value

    __call__ = next_id

    def reset(self) -> None:
        """Start again from ``start``."""
        self._next = self.start

    def __repr__(self) -> str:
        return f"IdCounter(start={self.start}, next={self._next})"
