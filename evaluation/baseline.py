"""The naive baseline the pipeline is compared with.

Detect every face on every frame, embed every face, and name each face on
its own against the gallery (one comparison, no evidence over time, no
tracking). It has the pipeline's ``process(frame, frame_index, timestamp)``
interface and returns a :class:`pipeline.results.FrameResult`, so the same
run loop, overlay and sinks time both. Each box gets a fresh id (nothing
links faces across frames), so only its naming accuracy is comparable with
the pipeline's, not its tracking metrics.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np

from pipeline.detect_at import detect_at
from tracker.boxes import clip_xyxy

#: Stages timed by :meth:`NaiveBaseline.process` (the pipeline's names).


class NaiveBaseline:
    """Detect, embed and name every face on every frame.

    Parameters
    ----------
    detector : object
        ``detect(frame_bgr) -> Detections``.
    embedder : object
        ``embed(frame_bgr, detections) -> (N, D)``.
    index : gallery.index.GalleryIndex
        The enrolled people.
    similarity_threshold : float
        Cosine similarity a face needs to its best person to be named.
    min_margin : float
        How much the best person must beat the runner-up.
    input_size_for : callable or None
        ``input_size_for(height, width) -> int``: the detector input side of a
        frame (the pipeline's :meth:`~pipeline.runner.Pipeline.full_frame_input_size`,
        so both detect alike); None: the detector's own.
    """

    def __init__(self, detector, embedder, index, *, similarity_threshold: float = 0.35,
                 min_margin: float = 0.08, input_size_for: Optional[Callable[[int, int], int]] = None) -> None:
        if not hasattr(detector, "detect"):
            raise ValueError("detector must have a detect(frame) method")
        if not hasattr(embedder, "embed"):
            raise ValueError("embedder must have an embed(frame, detections) method")
        if not -1.0 <= similarity_threshold <= 1.0:
            raise ValueError(f"similarity_threshold must be in [-1, 1], got {similarity_threshold}")
        if not 0.0 <= min_margin <= 2.0:
            raise ValueError(f"min_margin must be in [0, 2], got {min_margin}")
        self.detector = detector
        self.embedder = embedder
        self.index = index
        self.input_size_for = input_size_for
        self.similarity_threshold = float(similarity_threshold)
        self.min_margin = float(min_margin)
        self._next_id = 1
        #: The last frame's unthresholded matches (best name, score, margin per
        #: box), for accuracy-versus-threshold sweeps.
        self.last_matches = None

    def reset(self) -> None:
        """Start the ids again at 1 (there is no other state)."""
        self._next_id = 1

    def process(self, frame: np.ndarray, frame_index: int, timestamp: float = 0.0, *, scene_cut=None):
        """Detect, embed and name every face of ``frame``.

        Returns
        -------
        pipeline.results.FrameResult
            ``names`` per box (None = Unknown) and ``scores`` the best cosine
            similarity; ``track_ids`` are fresh for every box.
        """
        from pipeline.results import FrameResult

        timings = {}
        t0 = time.perf_counter()
        side = None if self.input_size_for is None else self.input_size_for(*frame.shape[:2])
        det = detect_at(self.detector, frame, side)
        timings["detect"] = time.perf_counter() - t0
        n = len(det)
        t0 = time.perf_counter()
        emb = np.asarray(self.embedder.embed(frame, det), np.float32) if n else np.zeros((0, 1), np.float32)
        timings["embed"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if n:
            m = self.index.query(emb)           # unthresholded: last_matches feeds the threshold sweep
            ok = (m.person >= 0) & (m.score >= self.similarity_threshold) & (m.margin >= self.min_margin)
            names = [name if k else None for name, k in zip(m.names, ok)]
            scores = np.asarray(m.score, np.float32)
        else:
            m, names, scores = None, [], np.zeros(0, np.float32)
        self.last_matches = m
        timings["identify"] = time.perf_counter() - t0
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        h, w = frame.shape[:2]
        xyxy = clip_xyxy(det.xyxy, w, h).astype(np.float32)
        return FrameResult(frame_index=frame_index, timestamp=float(timestamp), track_ids=ids, xyxy=xyxy,
                           confidence=det.confidence, names=names, scores=scores, predicted=np.zeros(n, bool),
                           detected=True, num_detections=n, num_embedded=n,
                           detections=det.with_embedding(emb) if n else det, timings=timings)
