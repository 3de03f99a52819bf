"""Statistics of degraded pairs per face height: distributions, ROC AUC, TAR at FAR, the table and the plot.

The rows come from :func:`gallery.degraded.degraded_pair_rows`; everything here
is a pure function of them (the plot aside), so it is tested on synthetic
scores. The thresholds use :mod:`gallery.calibrate` (:func:`roc_auc`,
:func:`far_threshold`, :func:`confusion`).

Conventions
-----------
* Similarities are cosine similarities (accept ``similarity >= threshold``).
* Distributions, AUC and FAR are over the pairs whose degraded face was
  detected: that is what an evidence model sees. ``tar`` is over the detected
  same-person pairs, ``tar_all`` over all same-person pairs (a missed face
  counts as refused).
* Counts are per pair: a probe photo used by several pairs counts once per pair.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from gallery.calibrate import confusion, far_threshold, roc_auc

#: False accept rates at which the true accept rate is reported.
DEFAULT_FARS = (0.01, 0.001)


@dataclass(frozen=True)
class DegradedRow:
    """One pair at one height; ``height`` ``None`` is the full-resolution reference (``b`` not rendered).

    ``pair`` is the 0-based row of the pair in the pairs file (header not
    counted). ``similarity``, ``det_score`` and ``box_height`` are NaN when ``detected`` is false.
    """

    pair: int
    height: Optional[int]
    same: bool
    detected: bool
    similarity: float
    det_score: float
    box_height: float

    def to_dict(self) -> dict:
        return {"pair": self.pair, "height": self.height, "same": self.same, "detected": self.detected,
                "similarity": _num(self.similarity, 5), "det_score": _num(self.det_score, 4),
                "box_height": _num(self.box_height, 2)}


def _num(x: float, digits: int = 4):
    """A JSON number, ``None`` for NaN."""
    return None if not math.isfinite(x) else round(float(x), digits)


@dataclass(frozen=True)
class Distribution:
    """Summary of a sample (population ``std``; percentiles by linear interpolation; NaN when empty)."""

    count: int
    mean: float
    std: float
    p5: float
    p50: float
    p95: float

    @classmethod
    def of(cls, values) -> "Distribution":
        v = np.asarray(values, np.float64).reshape(-1)
        if len(v) == 0:
            return cls(0, *([float("nan")] * 5))
        p5, p50, p95 = np.percentile(v, [5, 50, 95])
        return cls(len(v), float(v.mean()), float(v.std()), float(p5), float(p50), float(p95))

    def to_dict(self) -> dict:
        return {k: (v if k == "count" else _num(v, 5)) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TarAtFar:
    """The threshold refusing all but ``far`` of the detected different-person pairs, and what it accepts."""

    far: float
    threshold: float
    tar: float
    tar_all: float
    actual_far: float

    def to_dict(self) -> dict:
        return {"far": self.far, "threshold": _num(self.threshold, 5), "tar": _num(self.tar),
                "tar_all": _num(self.tar_all), "actual_far": _num(self.actual_far)}


@dataclass(frozen=True)
class HeightStats:
    """Every figure of one target height (``None``: full resolution)."""

    height: Optional[int]
    n_pairs: int
    n_detected: int
    same: Distribution
    different: Distribution
    det_score: Distribution
    box_height: Distribution
    auc: float
    tar_at_far: tuple

    @property
    def detection_rate(self) -> float:
        return self.n_detected / self.n_pairs if self.n_pairs else float("nan")

    def to_dict(self) -> dict:
        return {"height": self.height, "n_pairs": self.n_pairs, "n_detected": self.n_detected,
                "detection_rate": _num(self.detection_rate), "same": self.same.to_dict(),
                "different": self.different.to_dict(), "det_score_median": _num(self.det_score.p50),
                "det_score": self.det_score.to_dict(), "box_height": self.box_height.to_dict(),
                "auc": _num(self.auc), "tar_at_far": [t.to_dict() for t in self.tar_at_far]}


def tar_at_far(similarity, same, detected, far: float) -> TarAtFar:
    """TAR at one FAR; ``similarity`` is ignored where ``detected`` is false (see the module docstring)."""
    s, y, d = (np.asarray(similarity, np.float64), np.asarray(same, bool), np.asarray(detected, bool))
    sd, yd = s[d], y[d]
    if yd.all() or not yd.any():
        return TarAtFar(far, float("nan"), float("nan"), float("nan"), float("nan"))
    thr = far_threshold(sd, yd, far)
    c = confusion(sd, yd, thr)
    return TarAtFar(far, thr, c.recall, c.tp / int(y.sum()), c.far)


def height_stats(height: Optional[int], similarity, same, detected, det_score, box_height, *,
                 fars: Sequence[float] = DEFAULT_FARS) -> HeightStats:
    """The statistics of one height from ``(P,)`` arrays of its pairs (NaN where not detected)."""
    s, y, d = (np.asarray(similarity, np.float64), np.asarray(same, bool), np.asarray(detected, bool))
    if not (s.shape == y.shape == d.shape) or s.ndim != 1:
        raise ValueError(f"similarity, same and detected must be (P,) arrays, got {s.shape}, {y.shape}, {d.shape}")
    if not np.all(np.isfinite(s[d])):
        raise ValueError("a detected pair has a NaN or infinite similarity")
    both = (y[d].any() and not y[d].all())
    return HeightStats(
        height, len(s), int(d.sum()), Distribution.of(s[d & y]), Distribution.of(s[d & ~y]),
        Distribution.of(np.asarray(det_score, np.float64)[d]), Distribution.of(np.asarray(box_height, np.float64)[d]),
        roc_auc(s[d], y[d]) if both else float("nan"), tuple(tar_at_far(s, y, d, f) for f in fars))


def stats_by_height(rows: Sequence[DegradedRow], *, fars: Sequence[float] = DEFAULT_FARS) -> list[HeightStats]:
    """One :class:`HeightStats` per height of ``rows``: the full-resolution reference first, then ascending."""
    heights = sorted({r.height for r in rows}, key=lambda h: -1 if h is None else h)
    out = []
    for h in heights:
        rs = [r for r in rows if r.height == h]
        out.append(height_stats(h, [r.similarity for r in rs], [r.same for r in rs], [r.detected for r in rs],
                                [r.det_score for r in rs], [r.box_height for r in rs], fars=fars))
    return out


@dataclass
class DegradedResult:
    """What the protocol measured: the settings, the statistics per height and the raw rows.

    ``to_dict()`` is JSON-serialisable (NaN written as ``null``); the
    full-resolution reference is ``height: null`` in ``heights`` and ``rows``.
    """

    settings: dict
    stats: list
    rows: list
    left_out: list

    @classmethod
    def from_rows(cls, rows: Sequence[DegradedRow], settings: dict, left_out: Sequence[int] = (), *,
                  fars: Sequence[float] = DEFAULT_FARS) -> "DegradedResult":
        return cls(dict(settings), stats_by_height(rows, fars=fars), list(rows), list(left_out))

    def to_dict(self) -> dict:
        return {"settings": self.settings, "pairs_left_out": self.left_out,
                "heights": [s.to_dict() for s in self.stats], "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict, *, fars: Sequence[float] = DEFAULT_FARS) -> "DegradedResult":
        """The result of a ``to_dict()`` (or its JSON), statistics recomputed from the rows."""
        nan = float("nan")
        rows = [DegradedRow(r["pair"], r["height"], bool(r["same"]), bool(r["detected"]),
                            nan if r["similarity"] is None else r["similarity"],
                            nan if r["det_score"] is None else r["det_score"],
                            nan if r["box_height"] is None else r["box_height"]) for r in d["rows"]]
        return cls.from_rows(rows, d["settings"], d.get("pairs_left_out", ()), fars=fars)

    def to_json(self) -> str:
        """``to_dict()`` as JSON text: indented, except one line per row (thousands of them)."""
        d = self.to_dict()
        rows = d.pop("rows")
        head = json.dumps(d, indent=1, allow_nan=False)
        body = ",\n".join("  " + json.dumps(r, allow_nan=False, separators=(",", ":")) for r in rows)
        return head[:-2] + ',\n "rows": [\n' + body + "\n ]\n}\n"


# -- the table ------------------------------------------------------------------------------
def _f(x: float, fmt: str = "6.3f") -> str:
    return format(x, fmt) if math.isfinite(x) else " " * (int(fmt.split(".")[0]) - 3) + "n/a"


def _name(h: Optional[int]) -> str:
    return "full" if h is None else f"{h}px"


def format_degraded_table(result: DegradedResult) -> str:
    """Two plain-text tables: the distributions per height, then AUC and TAR at FAR with their thresholds."""
    lines = ["Cosine similarity of the degraded side b with the full-resolution side a (detected pairs only);",
             "'full' = side b at full resolution too.", "",
             f"{'height':>6s} {'det%':>6s} {'detscore':>8s} {'box_h':>6s} | {'n':>4s} {'same mean':>9s} {'std':>6s}"
             f" {'p5':>6s} {'p50':>6s} {'p95':>6s} | {'n':>4s} {'diff mean':>9s} {'std':>6s} {'p5':>6s} {'p50':>6s}"
             f" {'p95':>6s}"]
    for s in result.stats:
        a, b = s.same, s.different
        lines.append(f"{_name(s.height):>6s} {_f(100 * s.detection_rate, '6.1f')} {_f(s.det_score.p50, '8.3f')}"
                     f" {_f(s.box_height.p50, '6.1f')} | {a.count:4d} {_f(a.mean, '9.3f')} {_f(a.std)} {_f(a.p5)}"
                     f" {_f(a.p50)} {_f(a.p95)} | {b.count:4d} {_f(b.mean, '9.3f')} {_f(b.std)} {_f(b.p5)}"
                     f" {_f(b.p50)} {_f(b.p95)}")
    fars = [t.far for t in result.stats[0].tar_at_far] if result.stats else []
    head = "".join(f" | {'TAR@' + format(100 * f, 'g') + '%':>9s} {'of all':>6s} {'thresh':>6s}" for f in fars)
    lines += ["", f"{'height':>6s} {'AUC':>6s}{head}"]
    for s in result.stats:
        cells = "".join(f" | {_f(100 * t.tar, '8.1f')}% {_f(100 * t.tar_all, '5.1f')}% {_f(t.threshold)}"
                        for t in s.tar_at_far)
        lines.append(f"{_name(s.height):>6s} {_f(s.auc)}{cells}")
    lines.append("(TAR over detected same-person pairs; 'of all' counts missed faces as refused; FAR over detected"
                 " different-person pairs; box_h and detscore: medians of the detected faces)")
    return "\n".join(lines)


# -- the plot -------------------------------------------------------------------------------
def plot_degraded(result: DegradedResult, path: str | Path, *, title: str = "Degraded pairs") -> Path:
    """Save a PNG: one same/different histogram panel per height, then TAR at FAR and detection rate vs height."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write plot {path}: directory {path.parent} does not exist")
    n = len(result.stats) + 1
    cols = 4
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(16, 3.6 * math.ceil(n / cols)), squeeze=False)
    bins = np.linspace(-0.3, 1.0, 40)
    for ax, s in zip(axes.flat, result.stats):
        rs = [r for r in result.rows if r.height == s.height and r.detected]
        ax.hist([r.similarity for r in rs if not r.same], bins=bins, alpha=0.6, density=True, label="different")
        ax.hist([r.similarity for r in rs if r.same], bins=bins, alpha=0.6, density=True, label="same")
        ax.set_title(f"{_name(s.height)}: det {100 * s.detection_rate:.0f}%, AUC {s.auc:.3f}", fontsize=10)
        ax.set_xlabel("cosine similarity", fontsize=8)
        ax.legend(fontsize=7)
    ax = axes.flat[n - 1]
    sized = [s for s in result.stats if s.height is not None]
    hs = [s.height for s in sized]
    for k, t in enumerate(sized[0].tar_at_far if sized else ()):
        ax.plot(hs, [s.tar_at_far[k].tar for s in sized], "o-", label=f"TAR at FAR {100 * t.far:g}%")
    ax.plot(hs, [s.detection_rate for s in sized], "k--", label="detection rate")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(hs, [str(h) for h in hs])
    ax.set_xlabel("face height (px)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    for extra in list(axes.flat)[n:]:
        extra.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
