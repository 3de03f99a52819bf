"""The per-frame detections type shared by the detector, embedder, tracker,
gallery and pipeline (see supervision's ``Detections``).

It is a frozen dataclass validated on construction, indexable by boolean
masks and integer arrays, and it carries ``det_index`` -- the index of each
row in the detector's output for this frame -- through every selection, so a
track always maps back to the detection it was matched with without
re-matching by IoU.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

#: Number of facial landmarks: left eye, right eye, nose, left mouth corner,
#: right mouth corner (left/right as seen in the image).
NUM_LANDMARKS = 5


@dataclass(frozen=True)
class Detections:
    """Faces detected in one frame.

    Attributes
    ----------
    xyxy : ndarray
        An ``(N, 4)`` float32 array of boxes ``(x1, y1, x2, y2)`` in pixels of
        the original frame.
    confidence : ndarray
        An ``(N,)`` float32 array of detector scores in ``[0, 1]``.
    landmarks : ndarray or None
        An ``(N, 5, 2)`` float32 array of ``(x, y)`` landmarks in the order
        left eye, right eye, nose, left mouth corner, right mouth corner (as
        seen in the image), or ``None`` for detectors without keypoints.
    embedding : ndarray or None
        An ``(N, D)`` float32 array of L2-normalised appearance embeddings
        (``D = 512`` for ArcFace-style models), or ``None`` when not computed.
    det_index : ndarray
        An ``(N,)`` int64 array: the row of each detection in the detector's
        output for this frame. Defaults to ``arange(N)`` and survives
        indexing, so a subset still points at the original rows.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    landmarks: Optional[np.ndarray] = None
    embedding: Optional[np.ndarray] = None
    det_index: Optional[np.ndarray] = field(default=None)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
        n = len(xyxy)
        if not np.all(np.isfinite(xyxy)):
            raise ValueError("xyxy contains NaN or infinite values")
        if np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1]):
            raise ValueError("xyxy boxes must satisfy x2 >= x1 and y2 >= y1")

        confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if confidence.shape != (n,):
            raise ValueError(f"confidence must have shape ({n},), got {confidence.shape}")

        landmarks = self.landmarks
        if landmarks is not None:
            landmarks = np.asarray(landmarks, dtype=np.float32)
            if landmarks.size == 0:
                landmarks = landmarks.reshape(0, NUM_LANDMARKS, 2)
            if landmarks.shape != (n, NUM_LANDMARKS, 2):
                raise ValueError(
                    f"landmarks must have shape ({n}, {NUM_LANDMARKS}, 2), got {landmarks.shape}"
                )

        embedding = self.embedding
        if embedding is not None:
            embedding = np.asarray(embedding, dtype=np.float32)
            if embedding.ndim != 2 or embedding.shape[0] != n or (n > 0 and embedding.shape[1] == 0):
                raise ValueError(f"embedding must have shape ({n}, D), got {embedding.shape}")
            if not np.all(np.isfinite(embedding)):
                raise ValueError("embedding contains NaN or infinite values")

        det_index = self.det_index
        if det_index is None:
            det_index = np.arange(n, dtype=np.int64)
        else:
            det_index = np.asarray(det_index, dtype=np.int64).reshape(-1)
            if det_index.shape != (n,):
                raise ValueError(f"det_index must have shape ({n},), got {det_index.shape}")

        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "landmarks", landmarks)
        object.__setattr__(self, "embedding", embedding)
        object.__setattr__(self, "det_index", det_index)

    @classmethod
    def empty(cls, embedding_dim: Optional[int] = None, with_landmarks: bool = True) -> "Detections":
        """No detections; optionally with empty landmark/embedding arrays."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, NUM_LANDMARKS, 2), np.float32) if with_landmarks else None,
            embedding=None if embedding_dim is None else np.zeros((0, embedding_dim), np.float32),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Detections":
        """Select rows by a boolean mask, an integer array, a slice or an int."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            landmarks=None if self.landmarks is None else self.landmarks[index],
            embedding=None if self.embedding is None else self.embedding[index],
            det_index=self.det_index[index],
        )

    def with_embedding(self, embedding: np.ndarray) -> "Detections":
        """A copy with ``embedding`` set (an ``(N, D)`` array)."""
        return replace(self, embedding=embedding)

    @property
    def width(self) -> np.ndarray:
        """``(N,)`` box widths in pixels."""
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        """``(N,)`` box heights in pixels."""
        return self.xyxy[:, 3] - self.xyxy[:, 1]
