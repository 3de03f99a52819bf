"""Small fakes of the models for the gallery's unit tests (imported by the other test_gallery_* files).

A fake "photo" is a text file: ``FACES alice:120:0.05 bob:30:0.05`` lists
faces as ``person:short_side_px:sharpness``; anything else is "not an image".
The fake embedder gives each person a fixed random unit vector plus a little
noise, so the same person's photos match.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker.detections import Detections

DIM = 512


@dataclass(frozen=True)
class FakeIdentity:
    name: str = "fake-embedder"
    dim: int = DIM
    sha256: str = "ab" * 32


def person_vector(person: str, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(person.encode()))
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


@dataclass
class FakeImage:
    faces: list          # [(person, size, sharpness)]
    path: str


def write_photo(path: Path, *faces: tuple) -> Path:
    """Write a fake photo with faces ``(person, size, sharpness)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("FACES " + " ".join(f"{p}:{s}:{b}" for p, s, b in faces))
    return path


def fake_reader(path) -> FakeImage:
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read image {path}: not an image") from exc
    if not text.startswith("FACES"):
        raise ValueError(f"cannot read image {path}: not an image format OpenCV can decode")
    faces = []
    for tok in text.split()[1:]:
        person, size, sharp = tok.split(":")
        faces.append((person, float(size), float(sharp)))
    return FakeImage(faces, str(path))


class FakeDetector:
    def __init__(self):
        self.calls = 0

    def detect(self, image: FakeImage) -> Detections:
        self.calls += 1
        boxes, x = [], 0.0
        for _, size, _ in image.faces:
            boxes.append([x, 0.0, x + size, size * 1.2])
            x += size + 10
        return Detections(xyxy=np.array(boxes, np.float32).reshape(-1, 4),
                          confidence=np.full(len(boxes), 0.9, np.float32),
                          landmarks=None)


@dataclass
class FakeQuality:
    size: np.ndarray
    sharpness: np.ndarray
    frontalness: np.ndarray
    score: np.ndarray


def fake_quality(image: FakeImage, detections: Detections) -> FakeQuality:
    n = len(detections)
    sharp = np.array([f[2] for f in image.faces], np.float32)[:n]
    size = np.minimum(detections.width, detections.height)
    return FakeQuality(size, sharp, np.ones(n, np.float32), np.clip(size / 100.0, 0, 1).astype(np.float32))


class FakeEmbedder:
    def __init__(self, noise: float = 0.05, fail_after: int | None = None):
        self.identity = FakeIdentity()
        self.dim = DIM
        self.noise = noise
        self.calls = 0
        self.fail_after = fail_after
        self._rng = np.random.default_rng(0)

    def embed(self, image: FakeImage, detections: Detections) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("injected embedder failure")
        out = []
        for k in detections.det_index:
            v = person_vector(image.faces[int(k)][0]) + self.noise * self._rng.standard_normal(DIM) / np.sqrt(DIM)
            out.append(v / np.linalg.norm(v))
        return np.array(out, np.float32).reshape(len(detections), DIM)


@dataclass
class FakeTrack:
    """What the identifier reads of ``tracker.track.Track``."""

    track_id: int
    det_index: int | None
    confirmed: bool = True
    time_since_update: int = 0
    revived: bool = False

    def is_confirmed(self) -> bool:
        return self.confirmed
