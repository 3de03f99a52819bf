"""The embedding-reuse policy: which detections need the embedder, and which can borrow their track's embedding.

With ``embed_policy="all"`` every detection is embedded (the baseline). With
``"needed"`` a detection reuses the last embedding of the track it overlaps
when it is the mutual best IoU match (``>= reuse_iou_threshold``) of that
track's box predicted by the tracker's Kalman filter, overlaps no other
predicted track (and the track no other detection: at a crossing the borrowed
embedding could be the other person's), the track has been embedded at least
``settled_observations`` times, and its last embedding is younger than
``embed_refresh_interval`` frames. ``max_faces_per_frame`` bounds the
embedder's work: new faces first, then the stalest embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from pipeline.per_track import PerTrack
from tracker.boxes import iou_matrix
from tracker.checks import check_choice, check_int, check_number

EMBED_POLICIES = ("all", "needed")


@dataclass
class _Embedded:
    embedding: np.ndarray   # (D,) the track's last fresh embedding
    frame: int              # the frame it was computed on
    count: int              # fresh embeddings of this track so far


@dataclass(frozen=True)
class EmbedPlan:
    """Which rows of a frame's detections to embed.

    Attributes
    ----------
    need : ndarray
        ``(N,)`` bool: run the embedder on this row.
    borrow : dict
        Row -> track id whose last embedding the row may reuse (also for rows in ``need``).
    """

    need: np.ndarray
    borrow: Dict[int, int]


class EmbeddingReuse(PerTrack[_Embedded]):
    """Keeps each track's last embedding and plans each frame's embedder work.

    Parameters
    ----------
    embed_policy : {"all", "needed"}
    embed_refresh_interval : int
        Frames after which a track's embedding is computed again (``>= 1``).
    settled_observations : int
        Fresh embeddings a track needs before its last one may be reused (``>= 1``).
    reuse_iou_threshold : float
        IoU of a detection with a track's predicted box to reuse its embedding, in ``(0, 1]``.
    max_faces_per_frame : int
        Most faces embedded on one frame, ``>= 0`` (0 = no limit).
    """

    def __init__(self, embed_policy: str = "needed", embed_refresh_interval: int = 10, settled_observations: int = 3,
                 reuse_iou_threshold: float = 0.5, max_faces_per_frame: int = 0) -> None:
        self.embed_policy = check_choice("embed_policy", embed_policy, EMBED_POLICIES)
        self.embed_refresh_interval = check_int("embed_refresh_interval", embed_refresh_interval, 1)
        self.settled_observations = check_int("settled_observations", settled_observations, 1)
        self.reuse_iou_threshold = check_number("reuse_iou_threshold", reuse_iou_threshold, 0, 1, low_open=True)
        self.max_faces_per_frame = check_int("max_faces_per_frame", max_faces_per_frame, 0)
        super().__init__()

    def reusable(self, track_ids: Iterable[int]) -> list:
        """The tracks among ``track_ids`` that have an embedding to lend."""
        return [t for t in track_ids if t in self._by_id]

    def settled(self, track_id: int) -> bool:
        """The track has had at least ``settled_observations`` fresh embeddings."""
        memo = self._by_id.get(track_id)
        return memo is not None and memo.count >= self.settled_observations

    def embedding(self, track_id: int) -> np.ndarray:
        return self._by_id[track_id].embedding

    def plan(self, xyxy: np.ndarray, frame: int, candidates: Sequence[int], predicted_xyxy: Optional[np.ndarray],
             *, cut: bool) -> EmbedPlan:
        """Plan the embedder's work for detections ``xyxy`` ``(N, 4)`` on ``frame``.

        ``candidates`` are tracks with an embedding (see :meth:`reusable`),
        ``predicted_xyxy`` their ``(C, 4)`` boxes predicted into this frame.
        """
        n = len(xyxy)
        need = np.ones(n, bool)
        borrow: Dict[int, int] = {}
        if self.embed_policy == "needed" and not cut and len(candidates):
            borrow, settled = self._pairs(xyxy, candidates, predicted_xyxy, frame)
            need[list(settled)] = False
        if self.max_faces_per_frame and need.sum() > self.max_faces_per_frame:
            rows = np.flatnonzero(need)
            age = np.array([np.inf if r not in borrow else frame - self._by_id[borrow[r]].frame for r in rows])
            keep = rows[np.argsort(-age, kind="stable")[: self.max_faces_per_frame]]
            need[:] = False
            need[keep] = True
        return EmbedPlan(need, borrow)

    def _pairs(self, xyxy, candidates, predicted_xyxy, frame) -> Tuple[Dict[int, int], list]:
        iou = iou_matrix(xyxy, predicted_xyxy)
        best_track, best_det = iou.argmax(axis=1), iou.argmax(axis=0)
        borrow, settled = {}, []
        for r in range(len(xyxy)):
            k = int(best_track[r])
            if iou[r, k] < self.reuse_iou_threshold or int(best_det[k]) != r:
                continue
            if (iou[r] > 0).sum() > 1 or (iou[:, k] > 0).sum() > 1:
                continue  # a crossing: embed it afresh
            tid = candidates[k]
            borrow[r] = tid
            memo = self._by_id[tid]
            if memo.count >= self.settled_observations and frame - memo.frame < self.embed_refresh_interval:
                settled.append(r)
        return borrow, settled

    def record(self, track_id: int, embedding: np.ndarray, frame: int) -> None:
        """A fresh embedding of ``track_id`` was computed on ``frame``."""
        memo = self._by_id.get(track_id)
        count = 0 if memo is None else memo.count
        self._by_id[track_id] = _Embedded(np.array(embedding, copy=True), frame, count + 1)
