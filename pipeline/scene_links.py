"""Scene-level linking: one identity per person per scene, live.

Each track belongs to an identity (a cluster of tracks, at first its own).
A track that its face has not named joins the identity of an earlier track
of the same scene when their clothing (:mod:`models.torso`) matches clearly
better than any other candidate's, or when its mean face embedding is
clearly closer to a named identity's tracks than to any other track of the
scene (faces of one video resemble each other more than a gallery photo: same
light, camera and day), and it then shows that identity's name. Names flow
forward in time only, and per frame work is bounded: no look-ahead.

The rules, in order:

- two tracks ever shown on the same frame are different people;
- a track named by its face keeps that name; a link never joins two tracks
  whose faces name different people, and a track whose face later names
  someone else leaves its identity;
- the clothing cue is valid only within a scene
  (:class:`~pipeline.scenes.SceneThreader`): tracks of different scenes are
  never linked by clothing, so a name does not cross into a new scene that way;
- a link needs ``min_torso_observations`` descriptors of the track, a torso
  similarity of at least ``min_similarity`` to the candidate and a lead of
  ``min_margin`` over the next candidate, so two people dressed alike leave
  the track unlinked rather than guessed;
- where both tracks have a face embedding, their cosine similarity must not
  fall below ``min_face_similarity`` (faces that clearly disagree veto);
- a link by face needs ``min_face_observations`` embedded frames of both
  tracks, a similarity of at least ``min_face_link_similarity`` to a track of a
  named identity and a lead of ``min_face_link_margin`` over every other
  identity of the scene (named or not); when the face and the clothing point
  to different identities, the track stays unlinked;
- with a gallery (``gallery_scores``), a track's own face vetoes a name the
  gallery ranks clearly below another enrolled person for it (more than
  ``max_name_deficit`` below its best): the track does not join that
  identity, and leaves it when the identity is named so later. A face too
  weak to name its person can still tell that a link picked someone else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from tracker.checks import check_int, check_number
from tracker.ids import IdCounter

#: ``track_embedding(track_id) -> (D,) unit vector or None`` (the identifier's mean face embedding).
FaceEmbeddingOf = Callable[[int], Optional[np.ndarray]]

#: ``gallery_scores(face) -> (people, scores)``: a ``(D,)`` unit face embedding against every
#: enrolled person, ``P`` names and a ``(P,)`` array of cosine similarities (``P`` = 0 when nobody is enrolled).
GalleryScores = Callable[[np.ndarray], Tuple[Sequence[str], np.ndarray]]

#: Best-scoring people kept per track for the gallery veto (a large gallery is not copied into every track);
#: a name below them scores at most the last one kept, so its deficit is at least ``best - that score``.
GALLERY_TOP = 16


@dataclass
class _TrackCue:
    shot: int
    identity: int
    torso_sum: Optional[np.ndarray] = None
    torso_count: int = 0
    face_name: Optional[str] = None
    seen_with: Set[int] = field(default_factory=set)
    face: Optional[np.ndarray] = None
    face_count: int = 0
    gallery: Optional[Dict[str, float]] = None     # the GALLERY_TOP best people's scores of ``face`` (None: not yet)
    gallery_floor: float = -np.inf                 # the lowest score kept (-inf: everyone kept)

    def torso(self) -> Optional[np.ndarray]:
        if self.torso_sum is None:
            return None
        norm = float(np.linalg.norm(self.torso_sum))
        return self.torso_sum / norm if norm > 0 else None


@dataclass(frozen=True)
class SceneLinks:
    """The linker's answer for the shown tracks of one frame.

    Attributes
    ----------
    names : list of (str or None)
        ``N`` names to show: the track's own face name, else its identity's.
    identity_ids : ndarray
        ``(N,)`` int64 identity-cluster ids (stable for the run).
    linked : ndarray
        ``(N,)`` bool: the name shown comes from another track of the identity.
    """

    names: List[Optional[str]]
    identity_ids: np.ndarray
    linked: np.ndarray


class SceneLinker:
    """Link the tracks of a scene into identities by clothing, under face constraints.

    Parameters
    ----------
    min_similarity : float
        Least torso similarity (Bhattacharyya coefficient, ``[0, 1]``) for a link.
    min_margin : float
        How much the best candidate's torso similarity must beat the next one's (>= 0).
    min_torso_observations : int
        Torso descriptors a track needs before it may be linked (>= 1).
    min_face_similarity : float
        Two tracks whose mean face embeddings are less similar than this are never linked, in ``[-1, 1]``.
    min_face_link_similarity : float
        Least cosine similarity of the mean face embeddings for a link by face, in ``[-1, 1]``;
        above 1 turns linking by face off.
    min_face_link_margin : float
        How much the best identity's face similarity must beat the next identity's (>= 0).
    min_face_observations : int
        Detection frames with a face embedding each track needs for a link by face (>= 1).
    max_tracks : int
        Most tracks remembered (the oldest are forgotten first), ``>= 1``.
    gallery_scores : callable or None
        Scores a track's mean face against the enrolled people (:data:`GalleryScores`);
        None: no gallery veto.
    max_name_deficit : float
        With ``gallery_scores``: a track with ``min_face_observations`` embedded frames
        never shows a linked name that scores more than this (>= 0) below its best
        enrolled person (a name below its :data:`GALLERY_TOP` best counts as scoring the last of them).
    """

    def __init__(self, *, min_similarity: float = 0.88, min_margin: float = 0.1, min_torso_observations: int = 3,
                 min_face_similarity: float = 0.0, min_face_link_similarity: float = 0.45,
                 min_face_link_margin: float = 0.15, min_face_observations: int = 3,
                 max_tracks: int = 500, gallery_scores: Optional[GalleryScores] = None,
                 max_name_deficit: float = 0.15) -> None:
        self.min_similarity = check_number("min_similarity", min_similarity, 0, 1)
        self.min_margin = check_number("min_margin", min_margin, 0, 1)
        self.min_torso_observations = check_int("min_torso_observations", min_torso_observations, 1)
        self.min_face_similarity = check_number("min_face_similarity", min_face_similarity, -1, 1)
        self.min_face_link_similarity = check_number("min_face_link_similarity", min_face_link_similarity, -1)
        self.min_face_link_margin = check_number("min_face_link_margin", min_face_link_margin, 0)
        self.min_face_observations = check_int("min_face_observations", min_face_observations, 1)
        self.max_tracks = check_int("max_tracks", max_tracks, 1)
        if gallery_scores is not None and not callable(gallery_scores):
            raise ValueError(f"gallery_scores must be callable or None, got {type(gallery_scores).__name__}")
        self.gallery_scores = gallery_scores
        self.max_name_deficit = check_number("max_name_deficit", max_name_deficit, 0)
        self._tracks: Dict[int, _TrackCue] = {}
        self._ids = IdCounter()

    # ------------------------------------------------------------------ per frame
    def observe(self, track_ids: Sequence[int], shot: int, face_names: Sequence[Optional[str]],
                torso: Optional[np.ndarray] = None, torso_valid: Optional[np.ndarray] = None) -> None:
        """Record the tracks shown together on a detection frame, their face names and torso descriptors.

        ``torso`` is ``(N, D)`` unit rows aligned with ``track_ids``, ``torso_valid`` ``(N,)`` bool.
        """
        ids = [int(t) for t in track_ids]
        for i, tid in enumerate(ids):
            cue = self._tracks.get(tid)
            if cue is None:
                cue = self._tracks[tid] = _TrackCue(shot=shot, identity=self._ids.next_id())
            cue.seen_with.update(t for t in ids if t != tid)
            cue.face_name = face_names[i]
            if torso is not None and (torso_valid is None or torso_valid[i]):
                vec = np.asarray(torso[i], np.float64)
                cue.torso_sum = vec.copy() if cue.torso_sum is None else cue.torso_sum + vec
                cue.torso_count += 1
        self._trim()

    def link(self, track_ids: Sequence[int], same_scene: Callable[[int, int], bool],
             face_embedding: Optional[FaceEmbeddingOf] = None) -> SceneLinks:
        """Decide the links of the shown tracks (after :meth:`observe`) and return what to show.

        ``same_scene(shot_a, shot_b)`` tells whether two shots are one scene;
        ``face_embedding(track_id)`` gives a shown track's mean face embedding (kept
        by the linker after the track ends).
        """
        for tid in track_ids:
            cue = self._tracks.get(int(tid))
            face = face_embedding(int(tid)) if face_embedding is not None and cue is not None else None
            if face is not None:
                norm = float(np.linalg.norm(face))
                if norm > 0:
                    cue.face, cue.face_count = np.asarray(face, np.float64) / norm, cue.face_count + 1
                    cue.gallery = None                     # scored again when a linked name needs it
        for tid in track_ids:
            cue = self._tracks.get(int(tid))
            if cue is not None:
                self._relink(int(tid), cue, same_scene)
        return self.shown(track_ids)

    def shown(self, track_ids: Sequence[int]) -> SceneLinks:
        """What to show for these tracks with the links as they stand (frames without detection)."""
        names, identity_ids, linked = [], [], []
        for tid in track_ids:
            cue = self._tracks.get(int(tid))
            own = None if cue is None else cue.face_name
            name = own if own is not None or cue is None else self._identity_name(cue.identity)
            names.append(name)
            identity_ids.append(-1 if cue is None else cue.identity)
            linked.append(own is None and name is not None)
        return SceneLinks(names, np.asarray(identity_ids, np.int64), np.asarray(linked, bool))

    def identity_of(self, track_id: int) -> int:
        """The identity id of a track (-1 when it was never observed)."""
        cue = self._tracks.get(int(track_id))
        return -1 if cue is None else cue.identity

    def reset(self) -> None:
        """Forget every track (a new source)."""
        self._tracks.clear()
        self._ids.reset()

    # ------------------------------------------------------------------ helpers
    def _identity_name(self, identity: int) -> Optional[str]:
        """The one face name among the identity's tracks (None when none, or when they disagree)."""
        found = self._identity_names(identity)
        return found.pop() if len(found) == 1 else None

    def _relink(self, tid: int, cue: _TrackCue, same_scene) -> None:
        """Leave an identity that the face contradicts; join the scene's identity of the same name, or the one
        the clothing or the face clearly points to (never one that a face names otherwise)."""
        alone = all(c.identity != cue.identity for t, c in self._tracks.items() if t != tid)
        if cue.face_name is not None:
            if not alone and self._identity_names(cue.identity, but=tid) - {cue.face_name}:
                cue.identity, alone = self._ids.next_id(), True
            if alone:
                same_name = [c.identity for t, c in self._candidates(tid, cue, same_scene)
                             if self._identity_names(c.identity) == {cue.face_name}]
                if same_name:
                    cue.identity = same_name[-1]
                    return
        if not alone and cue.face_name is None and self._contradicts(cue, self._identity_name(cue.identity)):
            cue.identity, alone = self._ids.next_id(), True
        if not alone:
            return
        by_clothes = (self._best_by_clothing(tid, cue, same_scene)
                      if cue.torso_count >= self.min_torso_observations else None)
        by_face = self._best_by_face(tid, cue, same_scene) if cue.face_name is None else None
        if by_clothes is not None and by_face is not None and by_clothes != by_face:
            return                                          # the two cues disagree: no guess
        best = by_face if by_face is not None else by_clothes
        if best is not None and not self._contradicts(cue, self._identity_name(best)):
            cue.identity = best

    def _contradicts(self, cue: _TrackCue, name: Optional[str]) -> bool:
        """The track's own face ranks ``name`` clearly below another enrolled person."""
        if name is None or self.gallery_scores is None or cue.face_count < self.min_face_observations:
            return False
        if cue.gallery is None:
            self._score_gallery(cue)
        if not cue.gallery:
            return False                                   # nobody enrolled
        if name not in cue.gallery and cue.gallery_floor == -np.inf:
            return False                                   # not enrolled (any more): nothing ranks it
        return max(cue.gallery.values()) - cue.gallery.get(name, cue.gallery_floor) > self.max_name_deficit

    def _score_gallery(self, cue: _TrackCue) -> None:
        people, scores = self.gallery_scores(cue.face.astype(np.float32))
        scores = np.asarray(scores, np.float64).reshape(-1)
        if len(scores) != len(people):
            raise ValueError(f"gallery_scores gave {len(scores)} scores for {len(people)} people")
        kept_all = len(scores) <= GALLERY_TOP
        top = np.arange(len(scores)) if kept_all else np.argpartition(-scores, GALLERY_TOP - 1)[:GALLERY_TOP]
        cue.gallery = {people[i]: float(scores[i]) for i in top}
        cue.gallery_floor = -np.inf if kept_all else min(cue.gallery.values())

    def _identity_names(self, identity: int, but: Optional[int] = None) -> Set[str]:
        """The face names given to the identity's tracks (other than ``but``)."""
        return {c.face_name for t, c in self._tracks.items()
                if c.identity == identity and t != but and c.face_name is not None}

    def _candidates(self, tid: int, cue: _TrackCue, same_scene):
        """Other tracks of the scene whose identity has no track ever shown with this one."""
        blocked = {self._tracks[t].identity for t in cue.seen_with if t in self._tracks}
        return [(t, c) for t, c in self._tracks.items()
                if t != tid and c.identity != cue.identity and c.identity not in blocked
                and same_scene(cue.shot, c.shot)]

    def _best_by_clothing(self, tid: int, cue: _TrackCue, same_scene) -> Optional[int]:
        """The identity whose clothing clearly matches this track's best, if any."""
        mine = cue.torso()
        face = cue.face
        scores: Dict[int, float] = {}
        vetoed: Set[int] = set()
        for _, other in self._candidates(tid, cue, same_scene):
            if cue.face_name is not None and self._identity_names(other.identity) - {cue.face_name}:
                continue                                   # named someone else by a face
            theirs = other.torso()
            if mine is None or theirs is None or other.torso_count < self.min_torso_observations:
                continue
            other_face = other.face if face is not None else None
            if other_face is not None and float(np.dot(face, other_face)) < self.min_face_similarity:
                vetoed.add(other.identity)
            scores[other.identity] = max(float(np.dot(mine, theirs)), scores.get(other.identity, -1.0))
        ranked = sorted(((s, i) for i, s in scores.items() if i not in vetoed), reverse=True)
        if not ranked or ranked[0][0] < self.min_similarity:
            return None
        runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
        return ranked[0][1] if ranked[0][0] - runner_up >= self.min_margin else None

    def _best_by_face(self, tid: int, cue: _TrackCue, same_scene) -> Optional[int]:
        """The named identity whose tracks' faces clearly match this track's mean face best, if any."""
        if cue.face is None or cue.face_count < self.min_face_observations:
            return None
        scores: Dict[int, float] = {}
        for _, other in self._candidates(tid, cue, same_scene):
            if other.face is not None and other.face_count >= self.min_face_observations:
                scores[other.identity] = max(float(np.dot(cue.face, other.face)), scores.get(other.identity, -1.0))
        ranked = sorted(((s, i) for i, s in scores.items()), reverse=True)
        if not ranked or ranked[0][0] < self.min_face_link_similarity:
            return None
        best_score, best = ranked[0]
        runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
        if best_score - runner_up < self.min_face_link_margin or len(self._identity_names(best)) != 1:
            return None
        return best

    def _trim(self) -> None:
        while len(self._tracks) > self.max_tracks:
            del self._tracks[next(iter(self._tracks))]
