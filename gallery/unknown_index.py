"""The Unknowns as the identifier sees them: cluster centroids and negative examples in memory.

:class:`UnknownIndex` is built by :meth:`gallery.unknowns.UnknownGallery.index`
and kept up to date by the recorder; :func:`join_separation` is the evidence
model's word on whether a track's mean may join a cluster.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from gallery.evidence import EvidenceModel

#: The label of an Unknown cluster on screen and in the events.
UNKNOWN_LABEL = "Unknown #{}"


def join_separation(model: EvidenceModel, face_heights: Sequence[float]) -> float:
    """How many standard deviations separate "same person" from "someone else" for a track's mean.

    ``u`` (the similarity on the evidence model's common scale) is 1 for the
    same person and 0 for another; the track's mean of ``N`` frames has the
    variance of :meth:`EvidenceModel.llr` (``1 / precision`` plus the
    identity-level spreads), so the separation is ``1 / sqrt(var)``. About 6
    for ten 112 px faces, 2.3 for ten 24 px faces, 1 for 16 px faces.
    """
    heights = np.asarray(face_heights, float).reshape(-1)
    if len(heights) == 0:
        return 0.0
    _, precision, inverse_gap2 = model.normalise(np.zeros((len(heights), 1)), heights)
    var = 1.0 / float(precision.sum()) + model.same_spread ** 2 + model.different_spread ** 2 * float(
        inverse_gap2.mean())
    return float(1.0 / np.sqrt(var))


@dataclass
class UnknownIndex:
    """What the identifier needs of the Unknowns: cluster centroids and negative examples, in memory.

    Attributes
    ----------
    cluster_ids : ndarray
        ``(C,)`` int64 ids of the clusters.
    centroids : ndarray
        ``(C, D)`` float32 unit centroids.
    negatives : dict of str to ndarray
        Person name -> ``(K, D)`` float32 negative examples ("this is not <name>").
    join_similarity : float
        A track's mean at least this similar to a centroid is that Unknown; a
        face at least this similar to a negative example of X (and more than to X) is not X.
    """

    cluster_ids: np.ndarray
    centroids: np.ndarray
    negatives: Dict[str, np.ndarray] = field(default_factory=dict)
    join_similarity: float = 0.5

    def replace(self, other: "UnknownIndex") -> None:
        """Take ``other``'s clusters and negative examples (the recorder's update after a new appearance)."""
        self.cluster_ids, self.centroids, self.negatives = other.cluster_ids, other.centroids, other.negatives
        self.join_similarity = other.join_similarity

    def match(self, vector: np.ndarray) -> Tuple[Optional[int], float]:
        """The cluster id a ``(D,)`` unit vector belongs to (None when none is close enough) and its similarity."""
        if len(self.cluster_ids) == 0:
            return None, 0.0
        sims = self.centroids @ np.asarray(vector, np.float32).reshape(-1)
        best = int(np.argmax(sims))
        if sims[best] < self.join_similarity:
            return None, float(sims[best])
        return int(self.cluster_ids[best]), float(sims[best])

    def vetoes(self, name: str, vector: np.ndarray, score: float) -> bool:
        """True when the face is close to a negative example of ``name`` (and closer than to ``name``, ``score``)."""
        negatives = self.negatives.get(name)
        if negatives is None or len(negatives) == 0:
            return False
        closest = float(np.max(negatives @ np.asarray(vector, np.float32).reshape(-1)))
        return closest >= self.join_similarity and closest > score
