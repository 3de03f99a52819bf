"""Grouping faces that match nobody: who are the Unknowns that keep coming back?

The input is typically :meth:`gallery.identifier.Identifier.unknown_embeddings`
(one mean embedding per Unknown track). Agglomerative clustering on cosine
similarity joins two groups while their link (by ``linkage``) is at least
``similarity_threshold``: the same threshold that decides a name decides
whether two Unknown tracks are the same person. ``"average"`` linkage (the
default) resists the chaining of ``"single"`` linkage; ``"complete"`` is the
strictest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.checks import check_choice, check_int, check_number
from tracker.vectors import l2_normalize

LINKAGES = ("average", "single", "complete")


@dataclass(frozen=True)
class Cluster:
    """One group of faces.

    Attributes
    ----------
    members : ndarray
        ``(K,)`` int64 row indices of the input embeddings.
    centroid : ndarray
        ``(D,)`` float32 normalised mean embedding (enroll it to name the group).
    cohesion : float
        Mean cosine similarity of the members to the centroid.
    """

    members: np.ndarray
    centroid: np.ndarray
    cohesion: float


def cluster_embeddings(embeddings: np.ndarray, *, similarity_threshold: float = 0.35,
                       linkage: str = "average") -> np.ndarray:
    """Cluster labels of ``N`` embeddings.

    Parameters
    ----------
    embeddings : ndarray
        An ``(N, D)`` matrix (normalised here).
    similarity_threshold : float
        Cosine similarity at or above which two groups are joined.
    linkage : {"average", "single", "complete"}
        How the similarity of two groups is measured.

    Returns
    -------
    ndarray
        ``(N,)`` int64 labels ``0..C-1``, numbered by first appearance.
    """
    check_choice("linkage", linkage, LINKAGES)
    check_number("similarity_threshold", similarity_threshold, -1, 1)
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (N, D), got {x.shape}")
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    if n == 1:
        return np.zeros(1, np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage as scipy_linkage
    from scipy.spatial.distance import squareform

    x = l2_normalize(x).astype(np.float64)
    dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    dist = (dist + dist.T) / 2.0
    tree = scipy_linkage(squareform(dist, checks=False), method=linkage)
    # join while distance <= 1 - threshold (a tiny tolerance keeps equality inclusive)
    raw = fcluster(tree, t=1.0 - similarity_threshold + 1e-9, criterion="distance")
    _, first = np.unique(raw, return_index=True)
    order = {lab: k for k, lab in enumerate(raw[np.sort(first)])}
    return np.array([order[v] for v in raw], dtype=np.int64)


def summarize_clusters(embeddings: np.ndarray, labels: np.ndarray, *, min_size: int = 1) -> list[Cluster]:
    """The clusters with at least ``min_size`` members, largest first."""
    check_int("min_size", min_size, 1)
    x = l2_normalize(np.asarray(embeddings, dtype=np.float32))
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {labels.shape}")
    out = []
    for lab in np.unique(labels):
        members = np.nonzero(labels == lab)[0]
        if len(members) < min_size:
            continue
        centroid = l2_normalize(x[members].mean(axis=0))
        out.append(Cluster(members, centroid, float(np.mean(x[members] @ centroid))))
    out.sort(key=lambda c: (-len(c.members), int(c.members[0])))
    return out
