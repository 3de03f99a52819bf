"""Synthetic face scenes for tracker tests and the benchmark (numpy only).

A scene is a list of faces; each face has a random unit embedding and a
function from frame number to a box (or ``None`` while it is not visible).
:func:`render` turns a scene into per-frame :class:`Detections` whose
embeddings are the face's embedding plus Gaussian noise, renormalised, and
the ground truth ids, so tests can score a tracker with ID metrics.

The embedding noise ``sigma`` sets the cosine distance between two
observations of one face to about ``sigma**2 / (1 + sigma**2)`` (0.15 for
the default 0.42), while distinct random 512-d faces are about 1.0 apart;
this is the same order as EdgeFace/ArcFace distances between frames of
a real face (see the tracker defaults in ``configs/default.yaml``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from tracker.detections import Detections
from tracker.vectors import l2_normalize, random_unit_vectors  # noqa: F401  (re-exported for the tests)

BoxFn = Callable[[int], Optional[Sequence[float]]]


def linear_path(start_xyxy: Sequence[float], velocity_xy: Sequence[float], visible=None) -> BoxFn:
    """A box moving at constant velocity; ``visible(frame) -> bool`` hides it."""
    start = np.asarray(start_xyxy, dtype=np.float64)
    vel = np.r_[velocity_xy, velocity_xy].astype(np.float64)

    def box(frame: int):
        if visible is not None and not visible(frame):
            return None
        return start + frame * vel

    return box


@dataclass
class Face:
    """One synthetic person: an id, an embedding ``(D,)`` and a path."""

    gt_id: int
    embedding: np.ndarray
    box: BoxFn


@dataclass
class Frame:
    """One rendered frame: detections, their ground-truth ids ``(N,)``, cut flag."""

    detections: Detections
    gt_ids: np.ndarray
    scene_cut: bool = False


def render(
    faces: Sequence[Face],
    num_frames: int,
    sigma: float = 0.42,
    box_jitter: float = 1.0,
    cuts: Sequence[int] = (),
    rng: Optional[np.random.Generator] = None,
    shuffle: bool = True,
    with_embedding: bool = True,
) -> List[Frame]:
    """Render a scene to per-frame detections.

    Parameters
    ----------
    faces : sequence of Face
    num_frames : int
    sigma : float
        Embedding noise (see the module docstring).
    box_jitter : float
        Standard deviation in pixels of the noise added to box corners.
    cuts : sequence of int
        Frames flagged as shot cuts.
    rng : numpy Generator or None
    shuffle : bool
        Shuffle the detection order every frame (a tracker must not rely on it).
    with_embedding : bool
        Attach embeddings (``False`` gives ``embedding=None``).

    Returns
    -------
    list of Frame
    """
    rng = np.random.default_rng(0) if rng is None else rng
    frames = []
    dim = len(faces[0].embedding) if faces else 512
    for f in range(num_frames):
        boxes, embs, ids = [], [], []
        for face in faces:
            b = face.box(f)
            if b is None:
                continue
            b = np.asarray(b, dtype=np.float64) + rng.normal(scale=box_jitter, size=4)
            b[2:] = np.maximum(b[2:], b[:2] + 2)
            e = face.embedding + rng.normal(scale=sigma / np.sqrt(dim), size=dim)
            boxes.append(b)
            embs.append(l2_normalize(e))
            ids.append(face.gt_id)
        order = rng.permutation(len(boxes)) if shuffle else np.arange(len(boxes))
        n = len(boxes)
        xyxy = np.asarray(boxes, dtype=np.float32).reshape(n, 4)[order]
        emb = np.asarray(embs, dtype=np.float32).reshape(n, dim)[order] if with_embedding else None
        det = Detections(xyxy=xyxy, confidence=np.full(n, 0.9, np.float32), embedding=emb)
        frames.append(Frame(det, np.asarray(ids, dtype=np.int64).reshape(n)[order], f in set(cuts)))
    return frames


def crowd(
    num_faces: int,
    width: float = 1920.0,
    height: float = 1080.0,
    rng: Optional[np.random.Generator] = None,
    dim: int = 512,
) -> List[Face]:
    """``num_faces`` faces of 40-120 px drifting slowly across a frame."""
    rng = np.random.default_rng(0) if rng is None else rng
    emb = random_unit_vectors(num_faces, dim, rng)
    faces = []
    for i in range(num_faces):
        size = rng.uniform(40, 120)
        x, y = rng.uniform(0, width - size), rng.uniform(0, height - size)
        vel = rng.uniform(-2, 2, size=2)
        faces.append(Face(i + 1, emb[i], linear_path([x, y, x + size, y + size * 1.2], vel)))
    return faces


def tracker_output(tracks) -> Tuple[np.ndarray, np.ndarray]:
    """Ids ``(K,)`` and ``xyxy`` boxes ``(K, 4)`` of confirmed tracks matched this frame."""
    shown = [t for t in tracks if t.is_confirmed() and t.time_since_update == 0]
    ids = np.asarray([t.track_id for t in shown], dtype=np.int64)
    boxes = np.asarray([t.to_xyxy() for t in shown], dtype=np.float64).reshape(len(shown), 4)
    return ids, boxes
