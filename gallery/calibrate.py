"""Threshold calibration from same-person and different-person pairs, as the founders did it.

Every score here is a **cosine similarity** between L2-normalised embeddings
(higher = more alike; a pair is accepted as "same person" when
``score >= threshold``). The cosine *distance* is ``1 - similarity``; it is
shown beside each threshold in the report for readers used to distances.

Thresholds
----------
two-sigma
    ``mean(same) - 2 * std(same)``: the founders' rule (their distance form was
    ``mean + 2 std`` of the same-person distances): almost every true pair is
    accepted, so recall is high.
decision stump
    the single split with the highest information gain (entropy), as C4.5
    chooses a threshold on a continuous attribute: the midpoint between two
    consecutive sorted scores.
target FAR
    the lowest threshold at which at most ``target_far`` of the
    different-person pairs are accepted.

The functions are reusable (``evaluation/`` and ``models/`` tests import
them): :func:`roc_auc`, :func:`roc_curve`, :func:`confusion`,
:func:`two_sigma_threshold`, :func:`stump_threshold`, :func:`far_threshold`,
:func:`threshold_report`, :func:`format_report`, :func:`plot_distributions`,
:func:`yaml_snippet`. The pairs themselves (scoring, labelling, reading a
pairs CSV) are in :mod:`gallery.pairs`; :func:`pair_scores`,
:func:`labelled_pairs` and :func:`read_pairs_csv` are importable from here too.
The same statistics by face height, with side b of each pair rendered small
and compressed, are :mod:`gallery.degraded` (``calibrate --heights``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

# Re-exported: the calibrate command and the tests use them through this module.
from gallery.pairs import labelled_pairs, pair_scores, read_pairs_csv  # noqa: F401

logger = logging.getLogger(__name__)


def _check_scores(scores, same) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(same).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same length, got {s.shape} and {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    return s, y


# -- ROC ----------------------------------------------------------------------------
def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (higher score = positive), ties counted half.

    Parameters
    ----------
    scores : ndarray
        ``(P,)`` similarities (use ``-distance`` for distances).
    labels : ndarray
        ``(P,)`` bool or 0/1, true for positive (same-person) pairs.

    Returns
    -------
    float
        The probability that a random positive scores above a random negative
        (Mann-Whitney U / (n_pos * n_neg)); ``nan`` when a class is empty.
    """
    s, y = _check_scores(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-accept rates for every distinct threshold.

    Returns
    -------
    far, tar, thresholds : ndarray
        ``(T,)`` arrays; accepting ``score >= thresholds[k]`` gives
        ``far[k]`` (false accept rate) and ``tar[k]`` (true accept rate).
        The first threshold is ``+inf`` (nothing accepted).
    """
    s, y = _check_scores(scores, labels)
    thresholds = np.concatenate([[np.inf], np.unique(s)[::-1]])
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    tar = np.array([(s[y] >= t).sum() / pos for t in thresholds])
    far = np.array([(s[~y] >= t).sum() / neg for t in thresholds])
    return far, tar, thresholds


# -- metrics at a threshold ------------------------------------------------------------
@dataclass(frozen=True)
class Confusion:
    """The confusion matrix and the usual rates at one threshold (``score >= threshold`` accepts)."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if not (p + r > 0):
            return 0.0 if self.tp + self.fn else float("nan")
        return 2 * p * r / (p + r)

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.tn + self.fn
        return (self.tp + self.tn) / total if total else float("nan")

    @property
    def far(self) -> float:
        """False accept rate: accepted different-person pairs / all different-person pairs."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else float("nan")


def confusion(scores: np.ndarray, same: np.ndarray, threshold: float) -> Confusion:
    """Confusion matrix of ``score >= threshold`` against the truth ``same``."""
    s, y = _check_scores(scores, same)
    pred = s >= threshold
    return Confusion(float(threshold), int((pred & y).sum()), int((pred & ~y).sum()),
                     int((~pred & ~y).sum()), int((~pred & y).sum()))


# -- thresholds ---------------------------------------------------------------------
def two_sigma_threshold(scores: np.ndarray, same: np.ndarray, k: float = 2.0) -> float:
    """``mean(same) - k * std(same)`` of the same-person similarities (population std)."""
    s, y = _check_scores(scores, same)
    if not y.any():
        raise ValueError("two_sigma_threshold needs at least one same-person pair")
    return float(s[y].mean() - k * s[y].std())


def _entropy(pos: np.ndarray, total: np.ndarray) -> np.ndarray:
    p = np.divide(pos, total, out=np.zeros_like(pos, dtype=np.float64), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log2(p), 0.0) + np.where(p < 1, (1 - p) * np.log2(1 - p), 0.0))
    return h


def stump_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The decision-stump split with the highest information gain (C4.5's rule).

    Returns
    -------
    threshold : float
        Midpoint between the two consecutive distinct scores the split falls
        between (accept ``score >= threshold``).
    gain : float
        Its information gain in bits.
    """
    s, y = _check_scores(scores, same)
    if len(s) < 2 or y.all() or not y.any():
        raise ValueError("stump_threshold needs both same- and different-person pairs")
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order].astype(np.float64)
    n = len(s)
    cum_pos = np.cumsum(y_sorted)              # positives at or below index k
    # candidate splits between k and k+1 where the score changes
    k = np.nonzero(np.diff(s_sorted) > 0)[0]
    if len(k) == 0:
        raise ValueError("all scores are equal; no split is possible")
    left_n = (k + 1).astype(np.float64)
    left_pos = cum_pos[k]
    right_n = n - left_n
    right_pos = cum_pos[-1] - left_pos
    parent = _entropy(np.array([cum_pos[-1]]), np.array([float(n)]))[0]
    child = (left_n / n) * _entropy(left_pos, left_n) + (right_n / n) * _entropy(right_pos, right_n)
    gain = parent - child
    best = int(np.argmax(gain))
    threshold = (s_sorted[k[best]] + s_sorted[k[best] + 1]) / 2.0
    return float(threshold), float(gain[best])


def far_threshold(scores: np.ndarray, same: np.ndarray, target_far: float = 0.001) -> float:
    """The lowest threshold that accepts at most ``target_far`` of the different-person pairs.

    With ``n`` different-person pairs, at most ``floor(target_far * n)`` of
    them may score at or above it; the threshold lies just above the highest
    different-person score that must be refused.
    """
    if not 0.0 <= target_far < 1.0:
        raise ValueError(f"target_far must be in [0, 1), got {target_far}")
    s, y = _check_scores(scores, same)
    neg = np.sort(s[~y])[::-1]
    if len(neg) == 0:
        raise ValueError("far_threshold needs at least one different-person pair")
    allowed = int(math.floor(target_far * len(neg) + 1e-9))
    if allowed >= len(neg):
        return float(neg[-1])
    return float(np.nextafter(neg[allowed], np.inf))


# -- the report ------------------------------------------------------------------------
@dataclass
class CalibrationReport:
    """Both distributions, the thresholds and their metrics (all similarities)."""

    n_same: int
    n_different: int
    same_mean: float
    same_std: float
    different_mean: float
    different_std: float
    auc: float
    rows: dict = field(default_factory=dict)      # rule name -> Confusion
    stump_gain: float = float("nan")
    target_far: float = 0.001
    chosen: str = "stump"

    @property
    def chosen_threshold(self) -> float:
        return self.rows[self.chosen].threshold


def threshold_report(scores: np.ndarray, same: np.ndarray, *, target_far: float = 0.001,
                     chosen: str = "stump") -> CalibrationReport:
    """Distributions, the three thresholds and their metrics.

    Parameters
    ----------
    scores : ndarray
        ``(P,)`` cosine similarities of the pairs.
    same : ndarray
        ``(P,)`` bool, true for same-person pairs.
    target_far : float
        The false accept rate for the ``far`` rule.
    chosen : {"stump", "two_sigma", "far"}
        The rule whose threshold goes into the YAML snippet.
    """
    s, y = _check_scores(scores, same)
    if chosen not in ("stump", "two_sigma", "far"):
        raise ValueError(f"chosen must be 'stump', 'two_sigma' or 'far', got {chosen!r}")
    if not y.any() or y.all():
        raise ValueError("calibration needs both same-person and different-person pairs")
    stump, gain = stump_threshold(s, y)
    rows = {
        "two_sigma": confusion(s, y, two_sigma_threshold(s, y)),
        "stump": confusion(s, y, stump),
        "far": confusion(s, y, far_threshold(s, y, target_far)),
    }
    return CalibrationReport(
        n_same=int(y.sum()), n_different=int((~y).sum()),
        same_mean=float(s[y].mean()), same_std=float(s[y].std()),
        different_mean=float(s[~y].mean()), different_std=float(s[~y].std()),
        auc=roc_auc(s, y), rows=rows, stump_gain=gain, target_far=target_far, chosen=chosen,
    )


_RULE_TITLES = {"two_sigma": "2-sigma (mean_same - 2 std)", "stump": "decision stump (info gain)",
                "far": "target FAR"}


def _pct(x: float) -> str:
    return "   n/a" if not np.isfinite(x) else f"{100 * x:5.1f}%"


def format_report(report: CalibrationReport) -> str:
    """The report as a plain-text table."""
    lines = [
        "Scores are cosine SIMILARITIES (higher = more alike; accept when similarity >= threshold);"
        " cosine distance = 1 - similarity.",
        f"same-person pairs:      {report.n_same:6d}   similarity mean {report.same_mean:.4f}  std {report.same_std:.4f}",
        f"different-person pairs: {report.n_different:6d}   similarity mean {report.different_mean:.4f}"
        f"  std {report.different_std:.4f}",
        f"ROC AUC: {report.auc:.4f}",
        "",
        f"{'rule':34s} {'similarity':>10s} {'distance':>9s} {'precision':>9s} {'recall':>7s} {'F1':>7s}"
        f" {'accuracy':>8s} {'FAR':>7s}   TP  FP   TN  FN",
    ]
    for key, c in report.rows.items():
        title = _RULE_TITLES[key] + (f" {report.target_far:g}" if key == "far" else "")
        mark = " *" if key == report.chosen else "  "
        lines.append(
            f"{title + mark:34s} {c.threshold:10.4f} {1 - c.threshold:9.4f} {_pct(c.precision):>9s}"
            f" {_pct(c.recall):>7s} {_pct(c.f1):>7s} {_pct(c.accuracy):>8s} {_pct(c.far):>7s}"
            f" {c.tp:4d} {c.fp:3d} {c.tn:4d} {c.fn:3d}"
        )
    lines.append("(* = the threshold written to the YAML snippet; confusion matrix columns: TP FP TN FN)")
    return "\n".join(lines)


def yaml_snippet(report: CalibrationReport, *, model_name: Optional[str] = None) -> str:
    """A ``configs/`` snippet with the chosen threshold for the ``identifier`` section."""
    c = report.rows[report.chosen]
    src = f" for {model_name}" if model_name else ""
    return (
        f"identifier:\n"
        f"  # cosine similarity{src}, rule '{report.chosen}': precision {_pct(c.precision).strip()},"
        f" recall {_pct(c.recall).strip()}, F1 {_pct(c.f1).strip()} on {report.n_same}+{report.n_different} pairs\n"
        f"  similarity_threshold: {c.threshold:.4f}\n"
    )


def plot_distributions(scores: np.ndarray, same: np.ndarray, report: CalibrationReport,
                       path: str | Path, *, title: str = "Pair similarities") -> Path:
    """Save a PNG of both similarity distributions with the thresholds marked."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    s, y = _check_scores(scores, same)
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write plot {path}: directory {path.parent} does not exist")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(min(s.min(), -0.2), max(s.max(), 1.0), 50)
    ax.hist(s[~y], bins=bins, alpha=0.6, density=True, label=f"different person (n={report.n_different})")
    ax.hist(s[y], bins=bins, alpha=0.6, density=True, label=f"same person (n={report.n_same})")
    styles = {"two_sigma": ":", "stump": "-", "far": "--"}
    for key, c in report.rows.items():
        ax.axvline(c.threshold, color="k", linestyle=styles[key], label=f"{_RULE_TITLES[key]}: {c.threshold:.3f}")
    ax.set_xlabel("cosine similarity (higher = more alike)")
    ax.set_ylabel("density")
    ax.set_title(f"{title}  (ROC AUC {report.auc:.4f})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
