"""Five-point similarity alignment to the ArcFace template (pure functions).

An ArcFace-style recognizer expects a 112x112 crop in which the eyes, nose and
mouth corners sit at fixed places (``ARCFACE_TEMPLATE``). ``estimate_similarity``
finds the least-squares similarity transform (rotation, uniform scale,
translation; no reflection) that maps the detected landmarks onto the template
(Umeyama 1991, "Least-squares estimation of transformation parameters between
two point patterns"), and ``align_face`` warps the image with it, as
insightface's ``face_align.norm_crop`` does.

``crop_face`` is the fallback for detectors without landmarks: a square crop
centred on the box.
"""
from __future__ import annotations

import numpy as np

from tracker.checks import check_int, check_number

__all__ = ["ARCFACE_TEMPLATE", "arcface_template", "estimate_similarity", "align_face", "crop_face"]

#: ``(5, 2)`` landmark positions in a 112x112 ArcFace crop: left eye, right eye,
#: nose, left mouth corner, right mouth corner (as seen in the image).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_TEMPLATE.setflags(write=False)


def arcface_template(size: int = 112) -> np.ndarray:
    """The ArcFace template scaled to a ``size`` x ``size`` crop.

    Sizes that are multiples of 112 scale the template; other sizes scale it
    as a 128 crop and shift it right by ``8 * size / 128`` (insightface's
    ``estimate_norm`` convention).

    Returns
    -------
    ndarray
        A ``(5, 2)`` float64 array.
    """
    size = _check_size(size)
    if size % 112 == 0:
        return ARCFACE_TEMPLATE * (size / 112.0)
    ratio = size / 128.0
    dst = ARCFACE_TEMPLATE * ratio
    dst[:, 0] += 8.0 * ratio
    return dst


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst``.

    Umeyama's closed form: with centred point sets and the SVD of their
    covariance ``U S V^T``, the rotation is ``U D V^T`` (``D`` flips the last
    axis when needed to exclude reflections), the scale is
    ``trace(S D) / var(src)`` and the translation maps the centroids.

    Parameters
    ----------
    src : ndarray
        An ``(K, 2)`` array of source points, ``K >= 2``.
    dst : ndarray
        An ``(K, 2)`` array of destination points.

    Returns
    -------
    ndarray
        A ``(2, 3)`` float64 matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``
        (the form ``cv2.warpAffine`` takes).

    Raises
    ------
    ValueError
        For mismatched or wrong shapes, non-finite values, or degenerate
        source points (all the same).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"src must have shape (K, 2) with K >= 2, got {src.shape}")
    if dst.shape != src.shape:
        raise ValueError(f"dst must have the shape of src {src.shape}, got {dst.shape}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise ValueError("src and dst must be finite")
    n = src.shape[0]
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = (src_c ** 2).sum() / n
    if src_var <= 1e-12:
        raise ValueError("src points are degenerate (all at one place): cannot estimate a similarity")
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / src_var)
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp a face onto the ArcFace template.

    Parameters
    ----------
    image : ndarray
        An ``(H, W, 3)`` image (any channel order; it is kept).
    landmarks : ndarray
        A ``(5, 2)`` array of ``(x, y)`` pixels: left eye, right eye, nose,
        left and right mouth corners.
    size : int
        Output side in pixels (112 for ArcFace models).

    Returns
    -------
    ndarray
        A ``(size, size, 3)`` array of the image's dtype; pixels from outside
        the image are black.
    """
    import cv2

    _check_image(image)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2), got {landmarks.shape}")
    matrix = estimate_similarity(landmarks, arcface_template(size))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def crop_face(image: np.ndarray, xyxy: np.ndarray, size: int = 112, *, scale: float = 1.0) -> np.ndarray:
    """Square crop around a face box, resized to ``size`` (fallback without landmarks).

    The crop is the square of side ``scale * max(w, h)`` centred on the box
    centre, so the face keeps its aspect ratio; parts outside the image are
    black. It is not aligned: recognition from it is weaker than from
    ``align_face`` and should be used only when the detector has no landmarks
    (how much weaker, and why ``scale=1.0``: ``docs/tuning.md``).

    Parameters
    ----------
    image : ndarray
        An ``(H, W, 3)`` image.
    xyxy : ndarray
        A ``(4,)`` box ``(x1, y1, x2, y2)`` in pixels.
    size : int
        Output side in pixels.
    scale : float
        Crop side relative to the longer box side.

    Returns
    -------
    ndarray
        A ``(size, size, 3)`` array of the image's dtype.
    """
    import cv2

    _check_image(image)
    size = _check_size(size)
    check_number("scale", scale, 0, low_open=True)
    box = np.asarray(xyxy, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f"xyxy must be 4 finite numbers, got {xyxy!r}")
    side = scale * max(box[2] - box[0], box[3] - box[1])
    if side <= 0:
        raise ValueError(f"xyxy box has no area: {box.tolist()}")
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    s = size / side
    # Maps the crop square [cx - side/2, cx + side/2] to [0, size] (pixel edges).
    matrix = np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy]])
    # Pixel centres: x_out + 0.5 = s * (x_in + 0.5) + t  =>  shift by 0.5 * (s - 1).
    matrix[:, 2] += 0.5 * (s - 1.0)
    if s < 1.0:
        # Shrinking: warpAffine has no area interpolation and would alias, so crop then area-resize.
        return _crop_resize(image, cx, cy, side, size)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)


def _crop_resize(image: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """Crop the square (padding with black outside the image) and area-resize it."""
    import cv2

    x1 = int(round(cx - side / 2.0))
    y1 = int(round(cy - side / 2.0))
    n = max(int(round(side)), 1)
    h, w = image.shape[:2]
    canvas = np.zeros((n, n) + image.shape[2:], dtype=image.dtype)
    sx1, sy1 = max(x1, 0), max(y1, 0)
    sx2, sy2 = min(x1 + n, w), min(y1 + n, h)
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def _check_image(image: np.ndarray) -> None:
    if image is None or not isinstance(image, np.ndarray) or image.ndim != 3 or image.size == 0:
        shape = None if image is None else getattr(image, "shape", type(image).__name__)
        raise ValueError(f"image must be a non-empty (H, W, C) array, got {shape}")


def _check_size(size: int) -> int:
    return check_int("size", size, 16)
