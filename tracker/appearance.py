"""Nearest-neighbour cosine appearance metric with a per-track feature budget.

For every target (track id) the metric keeps the last ``budget`` features in
a ring array. The distance between a target and a detection is the smallest
cosine distance ``1 - <f, g>`` between the detection's feature and any stored
feature of the target (deep_sort's ``NearestNeighborDistanceMetric``), so a
face seen from several angles matches any of them.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from tracker.checks import check_int
from tracker.vectors import l2_normalize


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine distance ``1 - cos`` in ``[0, 2]``.

    Parameters
    ----------
    a : ndarray
        An ``(N, D)`` matrix of features (normalised here).
    b : ndarray
        An ``(M, D)`` matrix of features (normalised here).

    Returns
    -------
    ndarray
        An ``(N, M)`` matrix of cosine distances.
    """
    a = l2_normalize(np.asarray(a, dtype=np.float32))
    b = l2_normalize(np.asarray(b, dtype=np.float32))
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


class _Ring:
    """The last ``budget`` features of one target, in a preallocated array."""

    __slots__ = ("data", "count")

    def __init__(self, budget: int, dim: int) -> None:
        self.data = np.empty((budget, dim), dtype=np.float32)
        self.count = 0

    def add(self, features: np.ndarray) -> None:
        budget = len(self.data)
        for f in features[-budget:]:
            self.data[self.count % budget] = f
            self.count += 1

    @property
    def rows(self) -> np.ndarray:
        return self.data[: min(self.count, len(self.data))]


@runtime_checkable
class AppearanceMetric(Protocol):
    """What the tracker needs of an appearance store (features kept by target id)."""

    def distance(self, features: np.ndarray, targets: Sequence[int],
                 mask: Optional[np.ndarray] = None) -> np.ndarray:
        """``(T, M)`` distances of ``T`` targets to ``M`` features (``inf`` without samples)."""

    def partial_fit(self, features: np.ndarray, targets: np.ndarray,
                    active_targets: Optional[Iterable[int]] = None) -> None:
        """Store features by target and forget the targets not in ``active_targets``."""

    def has_samples(self, target: int) -> bool:
        """Whether anything is stored for ``target``."""

    def reset(self) -> None:
        """Forget everything."""


class NearestNeighborDistanceMetric:
    """Smallest cosine distance to each target's last ``budget`` features.

    The metric only measures; which distances are a match is decided by
    the caller (the tracker's ``max_cosine_distance`` and
    ``reid_max_cosine_distance``).

    Parameters
    ----------
    budget : int
        Features kept per target (``>= 1``); older ones are overwritten, so
        memory per target is bounded by ``budget * D`` floats.

    Raises
    ------
    ValueError
        If ``budget`` is out of range.
    """

    def __init__(self, budget: int = 50) -> None:
        self.budget = check_int("budget", budget, 1)
        self.samples: Dict[int, _Ring] = {}

    def partial_fit(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        active_targets: Optional[Iterable[int]] = None,
    ) -> None:
        """Add features and forget targets that are no longer active.

        Parameters
        ----------
        features : ndarray
            An ``(N, D)`` matrix of features.
        targets : ndarray
            An ``(N,)`` array of target ids, one per feature.
        active_targets : iterable of int or None
            Targets to keep; the samples of all others are dropped. ``None``
            keeps every target.
        """
        features = np.asarray(features, dtype=np.float32)
        targets = np.asarray(targets).reshape(-1)
        if len(features):
            features = l2_normalize(features.reshape(len(targets), -1))
            for target in np.unique(targets):
                ring = self.samples.get(int(target))
                if ring is None or ring.data.shape[1] != features.shape[1]:
                    ring = self.samples[int(target)] = _Ring(self.budget, features.shape[1])
                ring.add(features[targets == target])
        if active_targets is not None:
            keep = set(int(t) for t in active_targets)
            for target in [t for t in self.samples if t not in keep]:
                del self.samples[target]

    def has_samples(self, target: int) -> bool:
        """Whether any feature is stored for ``target``."""
        return int(target) in self.samples

    def reset(self) -> None:
        """Drop every sample."""
        self.samples.clear()

    def distance(
        self, features: np.ndarray, targets: Sequence[int], mask: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """Nearest-neighbour cosine distance of every target to every feature.

        Parameters
        ----------
        features : ndarray
            An ``(M, D)`` matrix of query features.
        targets : sequence of int
            ``T`` target ids; a target without samples gets distance ``inf``.
        mask : ndarray or None
            A ``(T, M)`` boolean matrix: compute only these pairs (the others
            are ``inf``). Gating first makes crowded frames cheap, since each
            track is compared with the few detections near it.

        Returns
        -------
        ndarray
            A ``(T, M)`` cost matrix.
        """
        features = l2_normalize(np.asarray(features, dtype=np.float32).reshape(len(features), -1))
        cost = np.full((len(targets), len(features)), np.inf)
        if len(targets) == 0 or len(features) == 0:
            return cost
        if mask is not None:
            mask = np.asarray(mask, dtype=bool).reshape(cost.shape)
            if mask.mean() < 0.5:
                return self._sparse_distance(features, targets, mask, cost)
            dense = self.distance(features, targets)
            cost[mask] = dense[mask]
            return cost
        rows, blocks, starts, n = [], [], [], 0
        for i, t in enumerate(targets):
            ring = self.samples.get(int(t))
            if ring is None or ring.count == 0 or ring.data.shape[1] != features.shape[1]:
                continue
            block = ring.rows
            rows.append(i)
            blocks.append(block)
            starts.append(n)
            n += len(block)
        if not rows:
            return cost
        stacked = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        sims = stacked @ features.T  # (n, M)
        best = np.maximum.reduceat(sims, starts, axis=0)  # (len(rows), M)
        cost[rows] = np.clip(1.0 - best, 0.0, 2.0)
        return cost

    def _sparse_distance(self, features, targets, mask, cost):
        """:meth:`distance` for the masked pairs only, one small product per target."""
        dim = features.shape[1]
        for i in np.flatnonzero(mask.any(axis=1)):
            ring = self.samples.get(int(targets[i]))
            if ring is None or ring.count == 0 or ring.data.shape[1] != dim:
                continue
            cols = np.flatnonzero(mask[i])
            sims = ring.rows @ features[cols].T
            cost[i, cols] = np.clip(1.0 - sims.max(axis=0), 0.0, 2.0)
        return cost
