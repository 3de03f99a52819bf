"""Face quality: size, sharpness, frontalness and a combined score.

The gallery uses it to refuse enrollment photos whose faces are too small or
too blurred; the identifier uses ``score`` as the weight of each observation.

Formulas (all per face)
-----------------------
size
    The short side of the box in pixels, ``min(w, h)``.
sharpness
    Variance of the Laplacian of the face crop after normalisation: the box
    is cut out (clipped to the frame), converted to grayscale, resized to
    64x64 (area interpolation) and its intensities stretched so that the 1st
    and 99th percentiles map to 0 and 1. Resizing makes the value independent
    of the face size and stretching of the exposure/contrast, so it measures
    blur (typical values: ``docs/tuning.md``).
frontalness
    From the 5 landmarks, in the frame rotated so that the eye line is
    horizontal (roll is removed, since alignment undoes it). With the eye
    centre ``E``, mouth centre ``M``, nose ``N`` and inter-ocular distance
    ``d``: the yaw term is ``1 - |N_x - (E_x + M_x)/2| / (d/2)`` (the nose's
    horizontal offset from the eye-mouth midline, 0 when the nose reaches an
    eye, which is about a full profile), and the pitch term is
    ``1 - max(0, |t - 0.5| - 0.15) / 0.35`` where
    ``t = (N_y - E_y) / (M_y - E_y)`` is the nose's height between the eye
    and mouth lines (0.49 on the ArcFace template). Both are clipped to
    [0, 1]; frontalness is their product. Faces without landmarks get 0.5;
    degenerate landmarks (eyes on top of each other, mouth not below the
    eyes) get 0.
score
    ``size_term * sharpness_term * frontalness`` in [0, 1], with
    ``size_term = clip((size - min_size) / (good_size - min_size), 0, 1)`` and
    ``sharpness_term = sharpness / (sharpness + sharpness_half)`` rescaled so
    that ``good_sharpness`` maps to 1 (clipped).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.io import to_bgr
from tracker.checks import check_number
from tracker.detections import Detections

__all__ = ["FaceQuality", "face_quality", "frontalness", "sharpness"]

#: Side of the normalised grayscale crop the sharpness is measured on.
SHARPNESS_CROP = 64


@dataclass(frozen=True)
class FaceQuality:
    """Quality of ``N`` faces.

    Attributes
    ----------
    size : ndarray
        ``(N,)`` float32 short box side in pixels.
    sharpness : ndarray
        ``(N,)`` float32 variance of the Laplacian of the normalised crop.
    frontalness : ndarray
        ``(N,)`` float32 in [0, 1] (1 frontal, about 0 full profile, 0.5
        without landmarks).
    score : ndarray
        ``(N,)`` float32 combined quality in [0, 1].
    """

    size: np.ndarray
    sharpness: np.ndarray
    frontalness: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


def face_quality(
    frame_bgr: np.ndarray,
    detections: Detections,
    *,
    min_size: float = 20.0,
    good_size: float = 80.0,
    good_sharpness: float = 0.02,
) -> FaceQuality:
    """Quality of every detected face.

    Parameters
    ----------
    frame_bgr : ndarray
        The ``(H, W, 3)`` BGR frame the detections come from.
    detections : Detections
        ``N`` faces.
    min_size : float
        Short side (px) at and below which ``score`` is 0.
    good_size : float
        Short side (px) from which size no longer lowers ``score``.
    good_sharpness : float
        Sharpness from which blur no longer lowers ``score``; the sharpness
        term is half of that at ``good_sharpness / 4``.

    Returns
    -------
    FaceQuality
        ``(N,)`` arrays (empty for no faces).
    """
    if not isinstance(detections, Detections):
        raise ValueError(f"detections must be a tracker.detections.Detections, got {type(detections).__name__}")
    good_size = check_number("good_size", good_size, 0, low_open=True)
    min_size = check_number("min_size", min_size, 0, good_size, high_open=True)
    good_sharpness = check_number("good_sharpness", good_sharpness, 0, low_open=True)
    frame = to_bgr(frame_bgr, name="frame_bgr")
    n = len(detections)
    size = np.minimum(detections.width, detections.height).astype(np.float32)
    sharp = np.array([sharpness(frame, box) for box in detections.xyxy], dtype=np.float32).reshape(n)
    if detections.landmarks is None:
        front = np.full(n, 0.5, np.float32)
    else:
        front = np.array([frontalness(lm) for lm in detections.landmarks], dtype=np.float32).reshape(n)
    size_term = np.clip((size - min_size) / (good_size - min_size), 0.0, 1.0)
    half = good_sharpness / 4.0
    sharp_term = np.clip((sharp / (sharp + half)) / (good_sharpness / (good_sharpness + half)), 0.0, 1.0)
    score = np.clip(size_term * sharp_term * front, 0.0, 1.0).astype(np.float32)
    return FaceQuality(size=size, sharpness=sharp, frontalness=front, score=score)


def sharpness(frame_bgr: np.ndarray, xyxy: np.ndarray) -> float:
    """Variance of the Laplacian of one face's normalised grayscale crop (see the module docstring).

    Returns 0 for a box with no pixels inside the frame or a flat crop.
    """
    import cv2

    h, w = frame_bgr.shape[:2]
    x1, y1, x2, y2 = np.asarray(xyxy, dtype=np.float64)
    x1, x2 = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
    y1, y2 = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    gray = cv2.cvtColor(frame_bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (SHARPNESS_CROP, SHARPNESS_CROP), interpolation=cv2.INTER_AREA).astype(np.float32)
    lo, hi = np.percentile(gray, [1, 99])
    if hi - lo < 1.0:
        return 0.0
    gray = np.clip((gray - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    return float(cv2.Laplacian(gray, cv2.CV_32F, ksize=1).var())


def frontalness(landmarks: np.ndarray) -> float:
    """Frontalness in [0, 1] of one face from its ``(5, 2)`` landmarks (see the module docstring)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2), got {lm.shape}")
    if not np.all(np.isfinite(lm)):
        return 0.0
    left_eye, right_eye, nose, left_mouth, right_mouth = lm
    eye_vec = right_eye - left_eye
    d = float(np.hypot(*eye_vec))
    if d < 1e-6:
        return 0.0
    # Rotate so the eye line is horizontal (removes roll).
    c, s = eye_vec / d
    rot = np.array([[c, s], [-s, c]])
    eye_c = rot @ ((left_eye + right_eye) / 2.0)
    mouth_c = rot @ ((left_mouth + right_mouth) / 2.0)
    nose_r = rot @ nose
    span = mouth_c[1] - eye_c[1]
    if span <= 1e-6:
        return 0.0
    midline_x = (eye_c[0] + mouth_c[0]) / 2.0
    yaw_term = 1.0 - abs(nose_r[0] - midline_x) / (d / 2.0)
    t = (nose_r[1] - eye_c[1]) / span
    pitch_term = 1.0 - max(0.0, abs(t - 0.5) - 0.15) / 0.35
    return float(np.clip(yaw_term, 0.0, 1.0) * np.clip(pitch_term, 0.0, 1.0))
