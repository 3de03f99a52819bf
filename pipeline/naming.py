"""Name-based re-identification of held tracks: the gallery's evidence, handed to the tracker inside its update.

A held track (it reached ``n_init`` hits but may still be an absent track,
see :class:`tracker.Tracker`'s ``hold_cosine_distance``) is never shown.
Another photo of a person can stay beyond the tracker's re-id distance from
their old track even in a clear view; the gallery, with several photos per
person, still knows them. :func:`name_linker` builds the tracker's
``held_linker`` for one frame: it gives the identifier this frame's evidence
of the held tracks, then proposes each held track for the one absent track
the gallery names alike, and releases (shows at once) each held track the
gallery names somebody that no absent track is named: it cannot be one of
them by its name, so waiting out the hold would only hide a named face.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Set

import numpy as np

from tracker.detections import Detections


def name_linker(identifier, detections: Detections, quality: Optional[np.ndarray], fresh_det: Set[int],
                consumed: Set[int], timestamp: Optional[float] = None):
    """A ``held_linker`` for this frame.

    Parameters
    ----------
    identifier : Identifier
    detections : Detections
        The frame's detections with embeddings.
    quality : ndarray or None
        ``(N,)`` evidence weights of the rows.
    fresh_det : set of int
        ``det_index`` values of rows embedded afresh (only those are evidence).
    consumed : set of int
        Filled with the ``det_index`` of every row given to the identifier
        here, so the caller does not count it twice.
    timestamp : float, optional
        The frame's time in seconds, handed to the identifier.
    """

    def link(held, absent):
        evidence = [t for t in held if t.det_index is not None and int(t.det_index) in fresh_det]
        if evidence:
            identifier.update(evidence, detections, quality, timestamp=timestamp)
            consumed.update(int(t.det_index) for t in evidence)
        by_name: Dict[str, List[int]] = {}
        for t in absent:
            name = identifier.get(int(t.track_id)).name
            if name is not None:
                by_name.setdefault(name, []).append(int(t.track_id))
        proposals = []
        for t in held:
            name = identifier.get(int(t.track_id)).name
            if name is None:
                continue
            olds = by_name.get(name)
            if olds is None:
                proposals.append((int(t.track_id), None))
            elif len(olds) == 1:
                proposals.append((int(t.track_id), olds[0]))
                by_name[name] = []   # taken: a second held track of this name waits
        return proposals

    return link
