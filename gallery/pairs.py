"""Verification pairs: every pair of a labelled set, their cosine similarities, and pairs CSV files.

A pair is two face embeddings (or two image paths) and whether they show the
same person. :mod:`gallery.calibrate` turns the scores of many pairs into
thresholds.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from tracker.vectors import l2_normalize


def pair_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of paired rows.

    Parameters
    ----------
    a, b : ndarray
        ``(P, D)`` embeddings; row ``i`` of ``a`` is compared with row ``i`` of ``b``.

    Returns
    -------
    ndarray
        ``(P,)`` float64 cosine similarities in ``[-1, 1]``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"a and b must both have shape (P, D), got {a.shape} and {b.shape}")
    return np.einsum("ij,ij->i", l2_normalize(a, axis=1).astype(np.float64), l2_normalize(b, axis=1))


def labelled_pairs(labels: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair of items with a label, and whether they share it.

    Parameters
    ----------
    labels : sequence
        ``N`` identity labels.

    Returns
    -------
    i, j : ndarray
        ``(P,)`` int64 indices with ``i < j``, ``P = N (N - 1) / 2``.
    same : ndarray
        ``(P,)`` bool, true when ``labels[i] == labels[j]``.
    """
    lab = np.asarray(list(labels), dtype=object)
    i, j = np.triu_indices(len(lab), k=1)
    same = np.array([lab[x] == lab[y] for x, y in zip(i, j)], dtype=bool)
    return i.astype(np.int64), j.astype(np.int64), same


_TRUE = {"1", "yes", "y", "true"}
_FALSE = {"0", "no", "n", "false"}


def _resolve(base: Path, name: str) -> Path:
    """``name`` relative to ``base``; if absent, the one file in its folder named ``*_<name>``."""
    p = Path(name)
    p = p if p.is_absolute() else base / p
    if p.exists():
        return p
    if p.parent.is_dir():
        hits = sorted(q for q in p.parent.iterdir() if q.name.endswith("_" + p.name))
        if len(hits) == 1:
            return hits[0]
    raise ValueError(f"pair file {name!r} not found (looked for {p})")


def read_pairs_csv(path: str | Path) -> list[tuple[Path, Path, bool]]:
    """Read a pairs file: three columns, two image paths and same/different.

    The header is optional (a first row whose third column is not a label).
    Accepted labels: ``1/0``, ``Yes/No``, ``y/n``, ``true/false``. Relative paths are taken from the CSV's folder; a
    missing ``img1.jpg`` also matches a unique ``<prefix>_img1.jpg`` there
    (deepface's ``master.csv`` beside renamed copies).
    """
    path = Path(path)
    base = path.parent
    pairs = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            row = [c.strip() for c in row]
            if not row or not any(row):
                continue
            if len(row) < 3:
                raise ValueError(f"{path}:{lineno}: expected 3 columns (image_a, image_b, same), got {row}")
            label = row[2].lower()
            if label in _TRUE:
                same = True
            elif label in _FALSE:
                same = False
            elif lineno == 1:
                continue      # header
            else:
                raise ValueError(f"{path}:{lineno}: label {row[2]!r} is not one of yes/no, 1/0, true/false")
            pairs.append((_resolve(base, row[0]), _resolve(base, row[1]), same))
    if not pairs:
        raise ValueError(f"{path} holds no pairs")
    return pairs
