"""pipeline.naming.name_linker: the gallery's proposals for held tracks (link to an absent track, or release)."""
from types import SimpleNamespace

import numpy as np

from pipeline.naming import name_linker
from tracker.detections import Detections


class NamesOnly:
    """An identifier that names tracks from a fixed table and records the evidence it is given."""

    def __init__(self, names):
        self.names = dict(names)
        self.updates = []

    def update(self, tracks, detections, quality, timestamp=None):
        self.updates.append(sorted(int(t.track_id) for t in tracks))

    def get(self, track_id):
        return SimpleNamespace(name=self.names.get(int(track_id)))


def _track(track_id, det_index=None):
    return SimpleNamespace(track_id=track_id, det_index=det_index)


DETS = Detections(np.asarray([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32), np.asarray([0.9, 0.6], np.float32),
                  embedding=np.eye(2, 4, dtype=np.float32))


def _link(names, held, absent, fresh=(0, 1)):
    identifier, consumed = NamesOnly(names), set()
    proposals = name_linker(identifier, DETS, None, set(fresh), consumed)(held, absent)
    return proposals, identifier, consumed


def test_a_held_track_named_like_one_absent_track_is_proposed_for_it():
    proposals, identifier, consumed = _link({1: "ann", 10: "ann", 11: "bob"}, [_track(1, 0)],
                                            [_track(10), _track(11)])
    assert proposals == [(1, 10)]
    assert identifier.updates == [[1]] and consumed == {0}   # this frame's evidence first, counted once


def test_a_held_track_named_somebody_no_absent_track_is_released():
    proposals, _, _ = _link({1: "cid", 10: "ann"}, [_track(1, 0)], [_track(10), _track(11)])
    assert proposals == [(1, None)]
    # Nobody absent at all: the name alone says it is a new face.
    assert _link({1: "cid"}, [_track(1, 0)], [])[0] == [(1, None)]


def test_unknown_or_ambiguous_held_tracks_stay_held():
    # Unknown: it may still be one of the absent (perhaps Unknown) tracks.
    assert _link({10: "ann"}, [_track(1, 0)], [_track(10), _track(11)])[0] == []
    # Two absent tracks named alike: which one is not known, so no link and no release.
    assert _link({1: "ann", 10: "ann", 11: "ann"}, [_track(1, 0)], [_track(10), _track(11)])[0] == []
    # Two held tracks named like one absent track: the first takes it, the second waits.
    proposals, _, _ = _link({1: "ann", 2: "ann", 10: "ann"}, [_track(1, 0), _track(2, 1)], [_track(10)])
    assert proposals == [(1, 10)]


def test_only_fresh_rows_are_evidence():
    _, identifier, consumed = _link({1: "cid"}, [_track(1, 0), _track(2, 1)], [], fresh=(1,))
    assert identifier.updates == [[2]] and consumed == {1}
