"""Unit vectors: L2 normalisation and random unit vectors, written once for the project."""
from __future__ import annotations

from typing import Optional

import numpy as np


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """``x`` divided by its L2 norm along ``axis`` (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, eps)


def random_unit_vectors(n: int, dim: int = 512, rng: Optional[np.random.Generator] = None, chunk: int = 65536,
                        out: Optional[np.ndarray] = None) -> np.ndarray:
    """``(n, dim)`` float32 random unit vectors, drawn in chunks of ``chunk`` rows to bound memory.

    Written into ``out`` (an ``(n, dim)`` float32 array or view) when given.
    Nearly orthogonal for a large ``dim``.
    """
    rng = np.random.default_rng() if rng is None else rng
    if out is None:
        out = np.empty((n, dim), np.float32)
    elif out.shape != (n, dim):
        raise ValueError(f"out must have shape ({n}, {dim}), got {out.shape}")
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + len(block)] = block
    return out
