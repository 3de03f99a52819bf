"""Unit vectors: L2 normalisation and random unit vectors, written once.

numpy only; nothing of the project is imported here, so the core, the models
and the gallery can all use it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["l2_normalize", "random_unit_vectors"]


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """``x`` divided by its L2 norm along ``axis``, as float32.

    Parameters
    ----------
    x : ndarray
        Any array (a ``(D,)`` vector or an ``(N, D)`` matrix of row vectors).
    axis : int
        The axis the norm is taken along.
    eps : float
        Norms below this are replaced by it, so zero vectors stay zero.

    Returns
    -------
    ndarray
        A float32 array of the shape of ``x``.
    """
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, eps)


def random_unit_vectors(n: int, dim: int = 512, rng: Optional[np.random.Generator] = None, chunk: int = 65536,
                        out: Optional[np.ndarray] = None) -> np.ndarray:
    """``(n, dim)`` float32 random unit vectors (uniform on the sphere).

    Generated in blocks of ``chunk`` rows to bound the memory of the float32
    normal draws; written into ``out`` (an ``(n, dim)`` float32 array or
    view) when given. ``rng`` defaults to ``np.random.default_rng()``.
    """
    if rng is None:
        rng = np.random.default_rng()
    if out is None:
        out = np.empty((n, dim), np.float32)
    elif out.shape != (n, dim):
        raise ValueError(f"out must have shape ({n}, {dim}), got {out.shape}")
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + len(block)] = block
    return out
