"""Degraded pairs: how a small, compressed face compares with a full-resolution gallery photo, by face height.

Broadcast wide shots are full of 15-50 px faces. Their embeddings still carry
identity, but weakly, so the evidence a frame gives depends on the face's
height and detector score. This protocol measures that on verification pairs.

The protocol
------------
For each pair ``(a, b, same)`` and each target face height ``h``:

1. the face of each full-resolution photo is the one enrollment would take
   (:func:`gallery.photos.choose_face`: the largest face, when it is clearly
   the largest and at least ``min_face_size`` px); a photo without one leaves
   its pairs out;
2. side ``a`` stays at full resolution, embedded once, as enrolled photos are;
3. side ``b`` is rendered the way a camera makes a small face
   (:func:`render_small_face`): the *whole* photo is resized so that the face's
   box is ``h`` px high (``cv2.INTER_AREA`` when shrinking), pasted with the
   face centred into a neutral grey canvas (640x360 by default, larger photos
   cropped), optionally blurred, and the canvas is JPEG-compressed at quality
   75 (OpenCV's 4:2:0 chroma subsampling and 8x8 DCT quantisation stand in for
   a broadcast H.264 frame; no temporal artefacts);
4. the normal detector runs on the canvas; the detection overlapping the known
   box most (IoU at least ``min_iou``) is embedded with its landmarks, as in the
   pipeline; no such detection is recorded as "not detected";
5. the row keeps the cosine similarity of ``b``'s degraded embedding with
   ``a``'s full-resolution one, the detector score and the detected box height.

Side ``b``'s observation depends only on ``(photo, h)`` and is computed once;
each full-resolution photo is detected and embedded once. Measurements:
``docs/degraded_pairs.md``.
The statistics per height, the table and the plot are in
:mod:`gallery.degraded_stats` (a module of its own to keep both under the
400-line rule).

Public functions: :func:`render_small_face`, :func:`compress_jpeg`,
:func:`best_overlap`, :func:`observe_full_resolution`,
:func:`observe_small_face`, :func:`degraded_pair_rows`,
:func:`run_degraded_pairs`.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from gallery.degraded_stats import DEFAULT_FARS, DegradedResult, DegradedRow
from gallery.pairs import pair_scores
from gallery.photos import choose_face, default_image_reader, embed_rows
from tracker.boxes import iou_matrix
from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

#: Target face heights in pixels: from barely detectable to the embedder's own input size.
DEFAULT_HEIGHTS = (16, 24, 32, 48, 64, 112)
#: Canvas (width, height): a 640x360 broadcast frame, as the detector sees it at its default input of 640.
DEFAULT_CANVAS_SIZE = (640, 360)
#: JPEG quality of the compression step: a typical broadcast-grade loss (visible blocking on 16-24 px faces).
DEFAULT_JPEG_QUALITY = 75
#: Smallest IoU between a detection and the known box for the face to count as detected.
DEFAULT_MIN_IOU = 0.3
#: Smallest face in a full-resolution photo: enrollment's (``gallery.photos.choose_face``).
ENROLL_MIN_FACE_SIZE = inspect.signature(choose_face).parameters["min_face_size"].default


# -- rendering (pure) --------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedFace:
    """A photo rendered with its face at a target height.

    Attributes
    ----------
    image : ndarray
        The ``(H, W, 3)`` BGR ``uint8`` canvas.
    xyxy : ndarray
        ``(4,)`` float64 box of the face in the canvas.
    scale : float
        Vertical resize factor applied to the photo (above 1: the source face
        was smaller than the target and was enlarged).
    """

    image: np.ndarray
    xyxy: np.ndarray
    scale: float


def compress_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` after a JPEG encode and decode at ``quality`` (1-100), as BGR ``uint8``."""
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def render_small_face(image: np.ndarray, xyxy, height: float, *, canvas_size: tuple = DEFAULT_CANVAS_SIZE,
                      jpeg_quality: Optional[int] = DEFAULT_JPEG_QUALITY, blur_sigma: float = 0.0,
                      fill: int = 128) -> RenderedFace:
    """Resize a whole photo so that one face is ``height`` px high, centred in a canvas, compressed.

    Parameters
    ----------
    image : ndarray
        ``(H, W, 3)`` BGR ``uint8`` photo.
    xyxy : array-like
        ``(4,)`` box of the face in ``image``.
    height : float
        Target face box height in pixels.
    canvas_size : (int, int)
        Canvas ``(width, height)``; each side at least twice the target height.
    jpeg_quality : int or None
        JPEG quality of the compression step; ``None`` skips it.
    blur_sigma : float
        Gaussian blur (in pixels of the resized photo) before compression: the
        softness of broadcast video (optics, scaling, H.264 deblocking); 0 = none.
    fill : int
        Grey level of the canvas where the photo does not reach.

    Returns
    -------
    RenderedFace
        The canvas and the face's box in it (its height within one pixel of
        ``height``; exact before the resized size is rounded).
    """
    import cv2

    box = np.asarray(xyxy, dtype=np.float64).reshape(4)
    box_h = box[3] - box[1]
    cw, ch = (check_int("canvas width", canvas_size[0], 1), check_int("canvas height", canvas_size[1], 1))
    check_number("height", height, 1)
    if not box_h > 0:
        raise ValueError(f"the face box must have a positive height, got {box.tolist()}")
    if min(cw, ch) < 2 * height:
        raise ValueError(f"canvas {cw}x{ch} is too small for a {height} px face (each side >= 2 x height)")
    h_img, w_img = image.shape[:2]
    scale = float(height) / box_h
    new_w, new_h = max(1, int(round(w_img * scale))), max(1, int(round(h_img * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (new_w, new_h), interpolation=interp)
    if check_number("blur_sigma", blur_sigma, 0) > 0:
        small = cv2.GaussianBlur(small, (0, 0), blur_sigma)
    sx, sy = new_w / w_img, new_h / h_img
    scaled = box * np.array([sx, sy, sx, sy])
    # integer offset that puts the face centre at the canvas centre
    dx = int(round(cw / 2 - (scaled[0] + scaled[2]) / 2))
    dy = int(round(ch / 2 - (scaled[1] + scaled[3]) / 2))
    canvas = np.full((ch, cw, 3), fill, np.uint8)
    x0, y0 = max(dx, 0), max(dy, 0)
    x1, y1 = min(dx + new_w, cw), min(dy + new_h, ch)
    canvas[y0:y1, x0:x1] = small[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    if jpeg_quality is not None:
        canvas = compress_jpeg(canvas, check_int("jpeg_quality", jpeg_quality, 1, 100))
    return RenderedFace(canvas, scaled + np.array([dx, dy, dx, dy], np.float64), sy)


def best_overlap(detections, xyxy, *, min_iou: float = DEFAULT_MIN_IOU) -> Optional[int]:
    """Row of the detection overlapping ``xyxy`` most, ``None`` when none reaches ``min_iou``."""
    if len(detections) == 0:
        return None
    iou = iou_matrix(np.asarray(xyxy, np.float64).reshape(1, 4), detections.xyxy.astype(np.float64))[0]
    row = int(np.argmax(iou))
    return row if iou[row] >= min_iou else None


# -- observing faces through the models ----------------------------------------------------
@dataclass(frozen=True)
class FaceObservation:
    """What the detector and the embedder made of one face.

    ``embedding`` is ``None`` (and the numbers NaN) when the face was not
    detected; ``box_height`` is the detected box's height in pixels and
    ``iou`` its overlap with the known box.
    """

    embedding: Optional[np.ndarray]
    det_score: float = float("nan")
    box_height: float = float("nan")
    iou: float = float("nan")
    xyxy: Optional[np.ndarray] = None

    @property
    def detected(self) -> bool:
        return self.embedding is not None


NOT_DETECTED = FaceObservation(None)


def observe_full_resolution(image: np.ndarray, detector, embedder, *,
                            min_face_size: float = ENROLL_MIN_FACE_SIZE) -> FaceObservation:
    """The face enrollment would take from a full-resolution photo (:func:`gallery.photos.choose_face`)."""
    dets = detector.detect(image)
    choice = choose_face(dets, min_face_size=min_face_size)
    if choice.row is None:
        logger.info("no usable face: %s", choice.reason)
        return NOT_DETECTED
    det = dets[choice.row]
    return FaceObservation(embed_rows(embedder, image, det)[0], float(det.confidence[0]), float(det.height[0]),
                           1.0, det.xyxy[0].astype(np.float64))


def observe_small_face(image: np.ndarray, xyxy, height: float, detector, embedder, *,
                       min_iou: float = DEFAULT_MIN_IOU, **render_kw) -> FaceObservation:
    """Render the face at ``height`` (:func:`render_small_face`), detect it and embed the best-overlapping face."""
    rendered = render_small_face(image, xyxy, height, **render_kw)
    dets = detector.detect(rendered.image)
    row = best_overlap(dets, rendered.xyxy, min_iou=min_iou)
    if row is None:
        return NOT_DETECTED
    det = dets[row]
    iou = iou_matrix(rendered.xyxy.reshape(1, 4), det.xyxy.astype(np.float64))[0, 0]
    return FaceObservation(embed_rows(embedder, rendered.image, det)[0], float(det.confidence[0]),
                           float(det.height[0]), float(iou), det.xyxy[0].astype(np.float64))


# -- the protocol ---------------------------------------------------------------------------
def _row(k: int, height: Optional[int], same: bool, a: FaceObservation, b: FaceObservation) -> DegradedRow:
    if not b.detected:
        return DegradedRow(k, height, same, False, float("nan"), float("nan"), float("nan"))
    sim = float(pair_scores(a.embedding[None], b.embedding[None])[0])
    return DegradedRow(k, height, same, True, sim, b.det_score, b.box_height)


def degraded_pair_rows(pairs: Sequence[tuple], detector, embedder, *, heights: Sequence[int] = DEFAULT_HEIGHTS,
                       image_reader: Optional[Callable] = None, min_face_size: float = ENROLL_MIN_FACE_SIZE,
                       min_iou: float = DEFAULT_MIN_IOU, canvas_size: tuple = DEFAULT_CANVAS_SIZE,
                       jpeg_quality: Optional[int] = DEFAULT_JPEG_QUALITY, blur_sigma: float = 0.0,
                       progress: bool = False) -> tuple[list[DegradedRow], list[int]]:
    """Run the protocol (module docstring) on ``(path_a, path_b, same)`` pairs.

    Returns
    -------
    rows : list of DegradedRow
        For every usable pair: one reference row (``height=None``) and one row
        per height, in pair order.
    left_out : list of int
        Indices of the pairs left out because a full-resolution photo has no
        usable face.
    """
    from tqdm import tqdm

    heights = [check_int("height", h, 1) for h in heights]
    read = image_reader or default_image_reader()
    paths = sorted({str(p) for a, b, _ in pairs for p in (a, b)})
    full: dict = {}
    for p in tqdm(paths, desc="full-resolution photos", unit="photo", disable=not progress):
        full[p] = observe_full_resolution(read(Path(p)), detector, embedder, min_face_size=min_face_size)
    usable = [k for k, (a, b, _) in enumerate(pairs) if full[str(a)].detected and full[str(b)].detected]
    left_out = sorted(set(range(len(pairs))) - set(usable))
    if left_out:
        logger.warning("%d of %d pairs left out: a photo has no usable face", len(left_out), len(pairs))
    probes = sorted({str(pairs[k][1]) for k in usable})
    small: dict = {}
    bar = tqdm(total=len(probes) * len(heights), desc="small faces", unit="face", disable=not progress)
    for p in probes:
        image = read(Path(p))
        for h in heights:
            small[p, h] = observe_small_face(image, full[p].xyxy, h, detector, embedder, min_iou=min_iou,
                                             canvas_size=canvas_size, jpeg_quality=jpeg_quality,
                                             blur_sigma=blur_sigma)
            bar.update(1)
    bar.close()
    rows = []
    for k in usable:
        a, b, same = str(pairs[k][0]), str(pairs[k][1]), bool(pairs[k][2])
        rows.append(_row(k, None, same, full[a], full[b]))
        rows += [_row(k, h, same, full[a], small[b, h]) for h in heights]
    return rows, left_out


def run_degraded_pairs(pairs: Sequence[tuple], detector, embedder, *, heights: Sequence[int] = DEFAULT_HEIGHTS,
                       fars: Sequence[float] = DEFAULT_FARS, settings: Optional[dict] = None,
                       **protocol_kw) -> DegradedResult:
    """:func:`degraded_pair_rows` and the statistics per height in one result.

    ``protocol_kw`` are the keywords of :func:`degraded_pair_rows`; they are
    recorded in ``result.settings`` with ``heights``, the number of pairs and
    the extra ``settings`` (model names, the pairs file).
    """
    rows, left_out = degraded_pair_rows(pairs, detector, embedder, heights=heights, **protocol_kw)
    params = inspect.signature(degraded_pair_rows).parameters
    recorded = {k: protocol_kw.get(k, params[k].default)
                for k in ("min_face_size", "min_iou", "canvas_size", "jpeg_quality", "blur_sigma")}
    recorded["canvas_size"] = list(recorded["canvas_size"])
    info = {"heights": list(heights), "n_pairs": len(pairs), "resize": "cv2.INTER_AREA (INTER_LINEAR to enlarge)",
            "compression": "JPEG (OpenCV, 4:2:0)" if recorded["jpeg_quality"] is not None else "none",
            **recorded, **(settings or {})}
    return DegradedResult.from_rows(rows, info, left_out, fars=fars)
