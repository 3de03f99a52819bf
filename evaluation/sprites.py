"""Face sprites for the broadcast simulator: a head cut from a photo, with a
soft elliptical alpha mask and the face box inside it.

Sprites come from real photos (one folder per person; a face detector finds
the face once) or, for unit tests, from :func:`synthetic_sprite`, which needs
no model. Nothing is cached on disk.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: Image suffixes read from person folders (webp included: one gallery photo is WebP).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

#: A detector for sprite cutting: BGR image -> ``(N, 4)`` xyxy boxes and ``(N,)`` scores.
DetectFn = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class Sprite:
    """One head to paste.

    Attributes
    ----------
    image : ndarray
        ``(h, w, 3)`` uint8 BGR pixels.
    alpha : ndarray
        ``(h, w)`` float32 opacity in ``[0, 1]`` (soft ellipse).
    face_xyxy : ndarray
        ``(4,)`` float64 face box in sprite pixels; it lies where ``alpha``
        is at least 0.5, so the face box is fully drawn when unoccluded.
    source : str
        Where it came from (photo path or ``"synthetic"``).
    """

    image: np.ndarray
    alpha: np.ndarray
    face_xyxy: np.ndarray
    source: str = "synthetic"

    @property
    def face_height(self) -> float:
        return float(self.face_xyxy[3] - self.face_xyxy[1])


def elliptical_alpha(height: int, width: int, feather: float = 0.2) -> np.ndarray:
    """A ``(height, width)`` float32 mask: 1 inside an inscribed ellipse,
    falling smoothly to 0 over the outer ``feather`` fraction of its radius."""
    if not 0 < feather < 1:
        raise ValueError(f"feather must be in (0, 1), got {feather}")
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ny = (yy + 0.5 - height / 2) / (height / 2)
    nx = (xx + 0.5 - width / 2) / (width / 2)
    r = np.sqrt(nx * nx + ny * ny)
    t = np.clip((1.0 - r) / feather, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep


def make_sprite(image: np.ndarray, face_xyxy: Sequence[float], *, margin: float = 1.9, feather: float = 0.2,
                source: str = "photo") -> Sprite:
    """Cut a head around a face box.

    Parameters
    ----------
    image : ndarray
        ``(H, W, 3)`` BGR photo.
    face_xyxy : sequence of float
        The face box in the photo.
    margin : float
        Sprite side / face side. With the default feather, a margin of at
        least ~1.8 keeps the whole face box at alpha >= 0.5.
    """
    if margin < 1.5:
        raise ValueError(f"margin must be >= 1.5, got {margin}")
    x1, y1, x2, y2 = [float(v) for v in face_xyxy]
    fw, fh = x2 - x1, y2 - y1
    if fw < 2 or fh < 2:
        raise ValueError("face box too small")
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    sw, sh = int(round(fw * margin)), int(round(fh * margin))
    sx, sy = int(round(cx - sw / 2)), int(round(cy - sh / 2))
    pad = max(sw, sh)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    crop = padded[sy + pad: sy + pad + sh, sx + pad: sx + pad + sw].copy()
    face = np.array([x1 - sx, y1 - sy, x2 - sx, y2 - sy], dtype=np.float64)
    return Sprite(crop, elliptical_alpha(sh, sw, feather), face, source)


def synthetic_sprite(seed: int, *, size: int = 96, face_color: Optional[Sequence[int]] = None,
                     textured: bool = True) -> Sprite:
    """A model-free sprite for tests: a random texture with a solid (or
    textured) face rectangle exactly at ``face_xyxy``.

    With ``textured=False`` the face rectangle is one solid ``face_color``,
    so tests can find exactly where it was drawn.
    """
    rng = np.random.default_rng(seed)
    margin = 1.9
    side = int(round(size * margin))
    img = rng.integers(0, 256, (side // 8 + 1, side // 8 + 1, 3), dtype=np.uint8)
    img = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
    f0 = int(round((side - size) / 2))
    color = np.array(face_color if face_color is not None else rng.integers(0, 256, 3), dtype=np.uint8)
    face = np.empty((size, size, 3), np.uint8)
    face[:] = color
    if textured:
        face = cv2.add(face, rng.integers(0, 60, (size, size, 3), dtype=np.uint8))
        cv2.ellipse(face, (size // 3, size // 3), (size // 10, size // 14), 0, 0, 360, (20, 20, 20), -1)
        cv2.ellipse(face, (2 * size // 3, size // 3), (size // 10, size // 14), 0, 0, 360, (20, 20, 20), -1)
        cv2.ellipse(face, (size // 2, 3 * size // 4), (size // 5, size // 16), 0, 0, 360, (40, 30, 160), -1)
    img[f0:f0 + size, f0:f0 + size] = face
    return Sprite(img, elliptical_alpha(side, side), np.array([f0, f0, f0 + size, f0 + size], float), "synthetic")


def posed_sprite(sprite: Sprite, *, roll_deg: float = 0.0, squeeze_x: float = 1.0, squeeze_y: float = 1.0) -> Sprite:
    """A head pose made from a frontal sprite, at the sprite's full resolution.

    Approximations, not a 3-D model: ``roll_deg`` rotates the head in the
    image plane about the face-box centre (positive = counter-clockwise, the
    gt box keeps its size and centre: a detector's box of a rolled face is
    about the frontal box); ``squeeze_x`` < 1 narrows the head horizontally
    (a head turned away, yaw); ``squeeze_y`` < 1 shortens it (a bowed head,
    pitch). The face box is squeezed with the pixels. The squeeze resizes with
    ``cv2.INTER_AREA``, so the pose is made before the sprite is scaled down
    to its size in the frame, as a camera would see it.

    Parameters
    ----------
    sprite : Sprite
        The frontal head.
    roll_deg : float
        In-plane rotation in degrees.
    squeeze_x, squeeze_y : float
        Factors in ``(0, 1]``.

    Returns
    -------
    Sprite
        A new sprite (the input when the pose is frontal).
    """
    if not (0 < squeeze_x <= 1 and 0 < squeeze_y <= 1):
        raise ValueError(f"squeeze factors must be in (0, 1], got {squeeze_x}, {squeeze_y}")
    if roll_deg == 0 and squeeze_x == 1 and squeeze_y == 1:
        return sprite
    img, alpha, f = sprite.image, sprite.alpha, sprite.face_xyxy
    h, w = img.shape[:2]
    if roll_deg != 0:
        centre = (float(f[0] + f[2]) / 2, float(f[1] + f[3]) / 2)
        m = cv2.getRotationMatrix2D(centre, float(roll_deg), 1.0)
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        alpha = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)
    if squeeze_x != 1 or squeeze_y != 1:
        nw, nh = max(2, int(round(w * squeeze_x))), max(2, int(round(h * squeeze_y)))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (nw, nh), interpolation=cv2.INTER_AREA)
        f = f * np.array([nw / w, nh / h, nw / w, nh / h])
    return Sprite(img, alpha.astype(np.float32), np.asarray(f, np.float64), sprite.source)


def sprites_of_every_face(photo: Path, detect: DetectFn, *, min_face: int = 24) -> List[Sprite]:
    """One sprite per detected face of ``photo`` at least ``min_face`` px
    (a crowd or a collage of people who are not enrolled), left to right."""
    img = read_image(photo)
    if img is None:
        return []
    boxes, _ = detect(img)
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    boxes = boxes[np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= min_face]
    return [make_sprite(img, b, source=f"{photo}#{i}") for i, b in enumerate(boxes[np.argsort(boxes[:, 0])])]


def list_people(photo_dir: Path) -> Dict[str, List[Path]]:
    """``{person: [photo, ...]}`` for the person folders in ``photo_dir``.

    Folders starting with ``_`` are special: ``_unknown`` yields one person
    per photo (``_unknown/<stem>``, each a different non-enrolled person);
    the others (``_group``, ``_same_photo_variants``) are skipped.
    """
    people: Dict[str, List[Path]] = {}
    for d in sorted(Path(photo_dir).iterdir()):
        if not d.is_dir():
            continue
        photos = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if d.name == "_unknown":
            for p in photos:
                people[f"_unknown/{p.stem}"] = [p]
        elif not d.name.startswith("_") and photos:
            people[d.name] = photos
    return people


def read_image(path: Path) -> Optional[np.ndarray]:
    """Read a photo as BGR uint8 (alpha dropped), or ``None`` if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        log.warning("cannot read %s", path)
    return img


def sprites_from_photos(photos: Sequence[Path], detect: DetectFn, *, min_face: int = 40,
                        max_side: int = 320) -> List[Sprite]:
    """One sprite per photo: the most confident face, if at least
    ``min_face`` px. Sprites are downscaled so their face is at most
    ``max_side`` px (the simulator never draws faces larger)."""
    out = []
    for path in photos:
        img = read_image(path)
        if img is None:
            continue
        boxes, scores = detect(img)
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        if len(boxes) == 0:
            log.warning("no face found in %s: skipped", path)
            continue
        b = boxes[int(np.argmax(scores))]
        if min(b[2] - b[0], b[3] - b[1]) < min_face:
            log.warning("face in %s smaller than %d px: skipped", path, min_face)
            continue
        sprite = make_sprite(img, b, source=str(path))
        scale = max_side / sprite.face_height
        if scale < 1:
            h, w = sprite.image.shape[:2]
            nw, nh = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
            sx, sy = nw / w, nh / h
            sprite = Sprite(cv2.resize(sprite.image, (nw, nh), interpolation=cv2.INTER_AREA),
                            elliptical_alpha(nh, nw), sprite.face_xyxy * np.array([sx, sy, sx, sy]), sprite.source)
        out.append(sprite)
    return out


def yolo_detect_fn(weights: Path, *, confidence: float = 0.5) -> DetectFn:
    """A sprite-cutting detect function from YOLO face weights, through
    ``models.detector.FaceDetector`` (offline and quiet). The ``.pt`` runs in
    torch (``cpu_format=None``) whatever the pipeline's CPU form, so the
    simulator's sprites, and so its sequences, stay the same."""
    from models.detector import FaceDetector

    det = FaceDetector(weights, confidence_threshold=confidence, device="cpu", cpu_format=None)

    def detect(img):
        d = det.detect(img)
        return d.xyxy, d.confidence

    return detect
