"""Naming the faces of still images, without tracking.

A track is named from evidence gathered over many frames and is shown only
once confirmed (``n_init`` hits), so a single photo run through the
:class:`~pipeline.runner.Pipeline` shows no face at all. A still image has
exactly one observation per face, so :class:`StillNamer` applies the single
observation form of the identifier's mean-similarity rule
(:class:`gallery.naming_rules.MeanSimilarityRule`) directly:

* every face the detector finds is embedded;
* its embedding is scored against every enrolled person with the gallery
  index (the same ``score_mode`` the tracks use);
* the best person names the face when the cosine similarity reaches
  ``similarity_threshold`` and beats the runner-up by ``min_margin`` --
  the identifier's own thresholds (:meth:`StillNamer.from_identifier`).

``min_observations`` does not apply (a photo is one observation, and the
caller asked about this photo), nor do ``hysteresis`` and the evidence
rule's posterior, which are about sequences of frames.

The detector, the embedder and the index are passed in (this module imports
nothing of ``gallery``): ``detect(image) -> Detections``,
``embed(image, detections) -> (N, D)`` and
``match(queries, similarity_threshold=, min_margin=) -> Matches`` with
``names``, ``person``, ``score``, ``margin`` and the index's ``people``.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import numpy as np

from models.io import to_bgr
from tracker.checks import check_number

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StillFace:
    """One face of a still image and who it is.

    Attributes
    ----------
    xyxy : tuple of 4 float
        The box ``(x1, y1, x2, y2)`` in pixels of the image.
    landmarks : ndarray or None
        ``(5, 2)`` float32 ``(x, y)``: eyes, nose, mouth corners (see
        :class:`tracker.detections.Detections`); ``None`` when the detector gives none.
    confidence : float
        The detector's score.
    name : str or None
        The person, ``None`` for Unknown (or without a gallery).
    best : str or None
        The closest enrolled person, named or not (``None`` without a gallery).
    score : float
        Cosine similarity to ``best`` (NaN without a gallery).
    margin : float
        ``score`` minus the runner-up's score (NaN without a gallery).
    """

    xyxy: tuple
    landmarks: Optional[np.ndarray]
    confidence: float
    name: Optional[str]
    best: Optional[str]
    score: float
    margin: float

    def as_dict(self, digits: int = 4) -> dict:
        """JSON-ready values (boxes and landmarks to 0.1 px, scores to ``digits``; NaN -> None)."""
        def num(v: float, d: int):
            return None if not np.isfinite(v) else round(float(v), d)

        return {"xyxy": [num(v, 1) for v in self.xyxy],
                "landmarks": None if self.landmarks is None else [[num(x, 1), num(y, 1)] for x, y in self.landmarks],
                "confidence": num(self.confidence, digits), "name": self.name, "best_match": self.best,
                "score": num(self.score, digits), "margin": num(self.margin, digits)}


@dataclass(frozen=True)
class StillResult:
    """Every face of one still image.

    Attributes
    ----------
    faces : list of StillFace
        In the detector's order; a face's number is its position.
    width, height : int
        The image size in pixels.
    source : str
        Where the image came from (a path, or empty for an array).
    seconds : float
        Time spent detecting, embedding and matching.

    The properties ``xyxy``, ``track_ids`` (the face numbers), ``names`` and
    ``scores`` are what :meth:`pipeline.overlay.Overlay.annotate` draws.
    """

    faces: List[StillFace]
    width: int
    height: int
    source: str = ""
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def xyxy(self) -> np.ndarray:
        """``(N, 4)`` float32 boxes."""
        return np.asarray([f.xyxy for f in self.faces], np.float32).reshape(-1, 4)

    @property
    def track_ids(self) -> np.ndarray:
        """``(N,)`` int64 face numbers (a still image has no tracks)."""
        return np.arange(len(self.faces), dtype=np.int64)

    @property
    def names(self) -> List[Optional[str]]:
        return [f.name for f in self.faces]

    @property
    def scores(self) -> np.ndarray:
        """``(N,)`` float32 cosine similarities to the closest person."""
        return np.asarray([f.score for f in self.faces], np.float32)

    def as_dict(self) -> dict:
        return {"image": self.source, "width": self.width, "height": self.height,
                "faces": [f.as_dict() for f in self.faces]}


class StillNamer:
    """Detect, embed and name every face of a still image (one observation per face).

    Parameters
    ----------
    detector
        ``detect(image_bgr) -> Detections`` (:class:`models.detector.FaceDetector`).
    embedder
        ``embed(image_bgr, detections) -> (N, D)`` (:class:`models.embedder.FaceEmbedder`).
    index : GalleryIndex or None
        The enrolled people (:class:`gallery.index.GalleryIndex`); None names nobody.
    similarity_threshold : float
        Cosine similarity the best person needs, in ``[-1, 1]``.
    min_margin : float
        How much the best person must beat the runner-up, in ``[0, 2]``.

    There are no defaults here: they are the identifier's
    (:meth:`from_identifier`), so a photo and a track are named alike.
    """

    def __init__(self, detector, embedder, index=None, *, similarity_threshold: float, min_margin: float) -> None:
        if detector is None or not callable(getattr(detector, "detect", None)):
            raise ValueError("detector must have a detect(image) method")
        if index is not None and (embedder is None or not callable(getattr(embedder, "embed", None))):
            raise ValueError("naming faces needs an embedder with an embed(image, detections) method")
        self.detector, self.embedder, self.index = detector, embedder, index
        self.similarity_threshold = check_number("similarity_threshold", similarity_threshold, -1, 1)
        self.min_margin = check_number("min_margin", min_margin, 0, 2)

    @classmethod
    def from_identifier(cls, detector, embedder, identifier) -> "StillNamer":
        """The namer with ``identifier``'s index, ``similarity_threshold`` and ``min_margin``
        (:class:`gallery.identifier.Identifier`)."""
        return cls(detector, embedder, identifier.index, similarity_threshold=identifier.similarity_threshold,
                   min_margin=identifier.min_margin)

    def name(self, image: np.ndarray, *, source: str = "") -> StillResult:
        """Every face of ``image`` with its name.

        Parameters
        ----------
        image : ndarray
            ``(H, W, 3)`` BGR ``uint8`` (grayscale, BGRA and 16-bit are converted).
        source : str
            Recorded in the result (the file the image came from).

        Raises
        ------
        ValueError
            For an empty image or one of an unsupported shape or dtype.
        """
        image = to_bgr(image, name="image")
        start = time.perf_counter()
        detections = self.detector.detect(image)
        t_detect = time.perf_counter()
        names, best, score, margin = self._match(image, detections)
        done = time.perf_counter()
        lm = detections.landmarks
        faces = [StillFace(tuple(float(v) for v in detections.xyxy[i]),
                           None if lm is None else np.asarray(lm[i], np.float32), float(detections.confidence[i]),
                           names[i], best[i], float(score[i]), float(margin[i]))
                 for i in range(len(detections))]
        return StillResult(faces, int(image.shape[1]), int(image.shape[0]), str(source), done - start,
                           {"detect": t_detect - start, "embed_match": done - t_detect})

    def _match(self, image: np.ndarray, detections) -> tuple:
        """Names, closest people, scores and margins of the ``N`` detections."""
        n = len(detections)
        if self.index is None or n == 0:
            return [None] * n, [None] * n, np.full(n, np.nan), np.full(n, np.nan)
        embeddings = np.asarray(self.embedder.embed(image, detections), dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != n or not np.all(np.isfinite(embeddings)):
            raise RuntimeError(f"the embedder returned an array of shape {embeddings.shape} for {n} faces")
        m = self.index.match(embeddings, similarity_threshold=self.similarity_threshold, min_margin=self.min_margin)
        people: Sequence[str] = self.index.people
        best = [people[p] if p >= 0 else None for p in m.person]
        return list(m.names), best, m.score, m.margin


def image_files(specs: Iterable, *, recursive: bool = False) -> List[Path]:
    """The image files named by ``specs``: files as given, folders expanded in name order.

    Parameters
    ----------
    specs : iterable of path
        Image files and folders. A file is kept whatever its extension (the
        caller named it); in a folder, files with an extension of
        :data:`pipeline.sources.IMAGE_EXTENSIONS` count, hidden ones are left out.
    recursive : bool
        Walk sub-folders too.

    Raises
    ------
    ValueError
        A path does not exist, or a folder holds no image.
    """
    from pipeline.sources import IMAGE_EXTENSIONS

    found: List[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ValueError(f"no such file or directory: {spec}")
        if not path.is_dir():
            found.append(path)
            continue
        pattern = path.rglob("*") if recursive else path.iterdir()
        images = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                        and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not images:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {spec}"
                             + ("" if recursive else " (sub-folders are not searched)"))
        found += images
    return found


def is_still_source(spec) -> bool:
    """True when ``spec`` names an image file or a folder: named per image, without tracking."""
    from pipeline.sources import IMAGE_EXTENSIONS

    if not isinstance(spec, (str, os.PathLike)) or "://" in str(spec):
        return False
    path = Path(os.path.expanduser(spec))
    return path.is_dir() or (path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS)
