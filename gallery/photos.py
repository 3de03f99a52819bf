"""Faces in still photos: choosing the face to enroll, embedding it, naming every face.

Shared by enrollment, ``identify`` and calibration. The detector and the
embedder are passed in (``models.detector.FaceDetector`` and
``models.embedder.FaceEmbedder`` or test fakes with the same methods).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from models.weights import sha256_file  # noqa: F401  (re-exported: the one file-hash helper)

logger = logging.getLogger(__name__)


def default_image_reader() -> Callable:
    """``models.io.read_image`` (imported when first needed)."""
    from models.io import read_image
    return read_image


def default_quality_fn() -> Callable:
    """``models.quality.face_quality`` (imported when first needed)."""
    from models.quality import face_quality
    return face_quality


@dataclass(frozen=True)
class FaceChoice:
    """The face chosen in a photo, or why none was.

    Attributes
    ----------
    row : int or None
        Row of the chosen face in the detections, ``None`` when skipped.
    reason : str
        Empty when a face was chosen, else why the photo is skipped.
    """

    row: Optional[int]
    reason: str = ""


def choose_face(
    detections,
    sharpness: Optional[np.ndarray] = None,
    *,
    min_face_size: float = 40.0,
    min_sharpness: float = 0.0,
    comparable_face_ratio: float = 0.6,
) -> FaceChoice:
    """Pick the one clear face of a photo meant for enrollment.

    The largest face is chosen when every other face is clearly smaller
    (short side below ``comparable_face_ratio`` times its short side: a
    blurred bystander); otherwise the photo is ambiguous.

    Parameters
    ----------
    detections : Detections
        The photo's ``N`` faces.
    sharpness : ndarray, optional
        ``(N,)`` variance of the Laplacian of each face (``FaceQuality.sharpness``).
    min_face_size : float
        Smallest short side of the face box in pixels.
    min_sharpness : float
        Smallest sharpness; 0 disables the blur check.
    comparable_face_ratio : float
        Another face this large (relative short side) makes the photo ambiguous.
    """
    n = len(detections)
    if n == 0:
        return FaceChoice(None, "no face found")
    side = np.minimum(detections.width, detections.height)
    order = np.argsort(-side, kind="stable")
    main = int(order[0])
    if n > 1 and side[order[1]] >= comparable_face_ratio * side[main]:
        comparable = int(np.sum(side >= comparable_face_ratio * side[main]))
        return FaceChoice(None, f"{comparable} faces of comparable size (need one clear face)")
    if side[main] < min_face_size:
        return FaceChoice(None, f"face too small ({side[main]:.0f} px < {min_face_size:.0f} px)")
    if sharpness is not None and min_sharpness > 0 and float(sharpness[main]) < min_sharpness:
        return FaceChoice(None, f"face too blurred (sharpness {float(sharpness[main]):.4f} < {min_sharpness:g})")
    return FaceChoice(main)


def embed_rows(embedder, image: np.ndarray, detections) -> np.ndarray:
    """Embeddings of all ``detections`` in ``image``, checked: ``(N, D)`` float32."""
    if len(detections) == 0:
        return np.zeros((0, getattr(embedder, "dim", 0) or 0), np.float32)
    emb = np.asarray(embedder.embed(image, detections), dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(detections) or not np.all(np.isfinite(emb)):
        raise RuntimeError(f"the embedder returned an array of shape {emb.shape} for {len(detections)} faces")
    return emb


def largest_face_embedding(image: np.ndarray, detector, embedder) -> Optional[np.ndarray]:
    """The ``(D,)`` embedding of the largest face in ``image``, ``None`` without a face.

    Used for verification pairs, where each image stands for one person.
    """
    dets = detector.detect(image)
    if len(dets) == 0:
        return None
    side = np.minimum(dets.width, dets.height)
    row = int(np.argmax(side))
    return embed_rows(embedder, image, dets[row])[0]


@dataclass(frozen=True)
class PhotoFace:
    """One face found by :func:`identify_photo`."""

    xyxy: tuple
    confidence: float
    name: Optional[str]
    best: Optional[str]
    score: float
    margin: float

    def as_dict(self) -> dict:
        return {"xyxy": [round(float(v), 1) for v in self.xyxy], "confidence": round(self.confidence, 4),
                "name": self.name, "best_match": self.best, "score": round(self.score, 4),
                "margin": round(self.margin, 4)}


def identify_photo(image: np.ndarray, detector, embedder, index, *, similarity_threshold: float,
                   min_margin: float = 0.0) -> list[PhotoFace]:
    """Every face of a photo with its name (``None`` = Unknown), score and margin.

    One photo is one observation, so this is the single-shot rule: the best
    person when its cosine similarity reaches ``similarity_threshold`` and
    beats the runner-up by ``min_margin``.
    """
    dets = detector.detect(image)
    if len(dets) == 0:
        return []
    m = index.match(embed_rows(embedder, image, dets), similarity_threshold=similarity_threshold,
                    min_margin=min_margin)
    return [PhotoFace(tuple(map(float, dets.xyxy[i])), float(dets.confidence[i]),
                      m.names[i], _best_name(index, m, i),
                      float(m.score[i]), float(m.margin[i])) for i in range(len(dets))]


def _best_name(index, matches, i: int) -> Optional[str]:
    """The closest enrolled person of query ``i``, named or not."""
    return index.people[matches.person[i]] if matches.person[i] >= 0 else None


@dataclass(frozen=True)
class ProbeResult:
    """One probe photo: who it is, who we said (``None`` = Unknown) and the best match."""

    path: str
    expected: Optional[str]
    predicted: Optional[str]
    best: Optional[str]
    score: float
    margin: float

    @property
    def correct(self) -> bool:
        return self.predicted == self.expected


@dataclass
class ProbeEvaluation:
    """Identification figures on a labelled probe folder."""

    results: list
    similarity_threshold: float
    min_margin: float

    def _known(self) -> list:
        return [r for r in self.results if r.expected is not None]

    def _unknown(self) -> list:
        return [r for r in self.results if r.expected is None]

    @property
    def accuracy(self) -> float:
        """Share of probes given the right answer (the right name, or Unknown for strangers)."""
        return float(np.mean([r.correct for r in self.results])) if self.results else float("nan")

    @property
    def rank1(self) -> float:
        """Share of enrolled-person probes whose best match is right, thresholds aside."""
        known = self._known()
        return float(np.mean([r.best == r.expected for r in known])) if known else float("nan")

    def as_dict(self) -> dict:
        known, unknown = self._known(), self._unknown()
        return {
            "similarity_threshold": self.similarity_threshold, "min_margin": self.min_margin,
            "probes": len(self.results), "accuracy": self.accuracy, "rank1": self.rank1,
            "known_correct": sum(r.correct for r in known), "known": len(known),
            "unknown_rejected": sum(r.correct for r in unknown), "unknown": len(unknown),
            "wrong_names": sum(r.predicted is not None and r.predicted != r.expected for r in self.results),
            "results": [r.__dict__ for r in self.results],
        }

    def table(self) -> str:
        d = self.as_dict()
        lines = [f"{'probe':60s} {'expected':20s} {'said':20s} {'score':>6s} {'margin':>6s}"]
        for r in self.results:
            flag = "" if r.correct else "  <-- wrong"
            lines.append(f"{r.path[-60:]:60s} {r.expected or 'Unknown':20s} {r.predicted or 'Unknown':20s}"
                         f" {r.score:6.3f} {r.margin:6.3f}{flag}")
        lines.append("")
        lines.append(
            f"accuracy {100 * d['accuracy']:.1f}% ({sum(r.correct for r in self.results)}/{d['probes']}); "
            f"enrolled people named right {d['known_correct']}/{d['known']}, rank-1 {100 * d['rank1']:.1f}%; "
            f"strangers left Unknown {d['unknown_rejected']}/{d['unknown']}; wrong names {d['wrong_names']} "
            f"(cosine similarity threshold {self.similarity_threshold:.3f}, min margin {self.min_margin:.3f})")
        return "\n".join(lines)


def evaluate_probes(probe_dir, detector, embedder, index, *, similarity_threshold: float, min_margin: float = 0.0,
                    image_reader: Optional[Callable] = None, progress: bool = True) -> ProbeEvaluation:
    """Identify the largest face of every probe photo and compare with its folder.

    ``probe_dir/<person>/`` holds photos of ``person`` (expected Unknown when
    ``person`` is not enrolled); ``probe_dir/_unknown/`` holds strangers; other
    folders starting with ``_`` (group photos, variants) are left out.
    """
    from tqdm import tqdm

    root = Path(probe_dir).expanduser()
    if not root.is_dir():
        raise ValueError(f"probe folder {root} does not exist or is not a folder")
    read = image_reader or default_image_reader()
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.startswith("_") and folder.name != "_unknown":
            continue
        expected = None if folder.name == "_unknown" or folder.name not in index.people else folder.name
        items += [(expected, f) for f in sorted(folder.iterdir()) if f.is_file() and not f.name.startswith(".")]
    results = []
    for expected, path in tqdm(items, desc="probes", unit="photo", disable=not progress):
        emb = largest_face_embedding(read(path), detector, embedder)
        if emb is None:
            results.append(ProbeResult(str(path), expected, None, None, 0.0, 0.0))
            continue
        m = index.match(emb[None], similarity_threshold=similarity_threshold, min_margin=min_margin)
        results.append(ProbeResult(str(path), expected, m.names[0], _best_name(index, m, 0),
                                   float(m.score[0]), float(m.margin[0])))
    return ProbeEvaluation(results, similarity_threshold, min_margin)
