"""Real faces at synthetic scale: talking-head videos shrunk into one wide frame.

The simulator's faces are cut from still photos; this clip keeps real video
(real speech, blinks, head motion, real compression history) and only changes
the scale. Each talking-head video is scaled down to its own size, so that its
face is about one of ``heights`` pixels tall (16 to 48 px by default), and the
four are placed side by side in a 1280x720 frame over a textured background.
The frame is encoded as H.264 at a broadcast-like bitrate
(:mod:`evaluation.video`), like the simulator's broadcast preset.

Ground truth is exact up to the detector on the full-resolution original:
the face detector runs on every original frame that is shown, at its own
resolution (where 300 px faces are easy), and its box is mapped through the
known scale and offset of the tile. A frame where it finds no face gets the
nearest frame's box with visibility 0, so scoring leaves it out ("don't
care") instead of calling a correct box a false positive.

Each speaker is enrolled from frames of their own video that the composite
never shows: the last ``enroll_seconds`` of the original are kept aside and
3-5 full-resolution frames from that segment are written to
``gallery/<speaker>/``. The composite plays the rest of the video, forwards
then backwards (ping-pong) when the clip is longer than that segment.

The output folder has the layout of :func:`evaluation.synth.write_sequence`
(``video.mp4``, ``gt/gt.txt``, ``identities.json``, ``cuts.txt``,
``seqinfo.ini``, ``synth.json``) plus ``gallery/``, so
``python -m evaluation score --gt DIR`` and
``python -m evaluation bench --source DIR/video.mp4 --gallery DIR/gallery`` work.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import gt as gtio

log = logging.getLogger(__name__)

#: The talking-head videos under ``../shared/data/video/talking_heads``.
TALKING_HEADS = ("video_retalking_1", "video_retalking_2", "video_retalking_4", "video_retalking_5")
#: Target face height (px) of each video, in the order of the videos.
DEFAULT_HEIGHTS = (16, 24, 34, 48)
#: Frames of the last part of each original kept aside for enrollment.
ENROLL_SECONDS = 1.0
#: Original frames between the composite's segment and the enrollment segment.
GAP_FRAMES = 5


@dataclass
class Tile:
    """One talking head in the composite.

    Attributes
    ----------
    name : str
        The speaker's identity (``talking_<video>``): gt name and gallery folder.
    video : Path
        The original.
    fps : float
        The original's frame rate.
    used : int
        Original frames ``[0, used)`` are the composite's segment.
    enroll : list of int
        Original frames written to the gallery (after ``used + GAP_FRAMES``).
    target_height : float
        The face height asked for.
    scale : (float, float)
        x and y scale from the original to the tile (tile size / original size).
    offset : (int, int)
        Top-left of the tile in the composite frame.
    boxes : dict
        Original frame index -> ``(4,)`` xyxy face box in the original, or None.
    tiles : dict
        Original frame index -> the scaled ``(h, w, 3)`` tile.
    """

    name: str
    video: Path
    fps: float
    used: int
    enroll: List[int]
    target_height: float
    scale: Tuple[float, float] = (1.0, 1.0)
    offset: Tuple[int, int] = (0, 0)
    boxes: Dict[int, Optional[np.ndarray]] = field(default_factory=dict)
    tiles: Dict[int, np.ndarray] = field(default_factory=dict)


def speaker_name(video: Path) -> str:
    """``video_retalking_1.mp4`` -> ``talking_retalking_1`` (an enrolled name: no leading ``_``)."""
    return "talking_" + Path(video).stem.replace("video_", "")


def ping_pong(i: int, n: int) -> int:
    """The ``i``-th frame of ``0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...``."""
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    j = i % period
    return j if j < n else period - j


def source_index(k: int, fps: float, composite_fps: float, used: int) -> int:
    """Original frame shown at composite frame ``k`` (0-based): the same
    instant in time, played ping-pong over ``[0, used)``."""
    return ping_pong(int(round(k * fps / composite_fps)), used)


def enrollment_frames(frame_count: int, fps: float, *, enroll_seconds: float = ENROLL_SECONDS,
                      count: int = 4) -> Tuple[int, List[int]]:
    """The composite's segment ``[0, used)`` and ``count`` (3 to 5) evenly
    spaced frames of the last ``enroll_seconds`` for enrollment.

    Raises ``ValueError`` when the video is too short for both."""
    if not 3 <= count <= 5:
        raise ValueError(f"count must be 3 to 5, got {count}")
    n_enroll = max(count, int(round(enroll_seconds * fps)))
    used = frame_count - n_enroll - GAP_FRAMES
    if used < 10:
        raise ValueError(f"a video of {frame_count} frames is too short for a segment and {n_enroll} enrollment frames")
    first = frame_count - n_enroll
    return used, [int(v) for v in np.linspace(first, frame_count - 1, count).round()]


def plan_tiles(videos: Sequence[Path], heights: Sequence[float], *, enroll_count: int = 4) -> List[Tile]:
    """One :class:`Tile` per video (frame rate, segments); scales come later."""
    if len(videos) != len(heights):
        raise ValueError(f"need one height per video, got {len(heights)} heights for {len(videos)} videos")
    tiles = []
    for video, h in zip(videos, heights):
        cap = cv2.VideoCapture(str(video))
        if not cap.isOpened():
            raise FileNotFoundError(f"cannot open {video}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        used, enroll = enrollment_frames(count, fps, count=enroll_count)
        tiles.append(Tile(speaker_name(video), Path(video), float(fps), used, enroll, float(h)))
    return tiles


def _best_box(detect, frame: np.ndarray) -> Optional[np.ndarray]:
    """The most confident face box ``(4,)`` xyxy of ``frame``, or None."""
    boxes, scores = detect(frame)
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    return boxes[int(np.argmax(scores))] if len(boxes) else None


def read_tile(tile: Tile, needed: Sequence[int], detect, gallery_dir: Optional[Path]) -> None:
    """Decode ``tile.video`` once: detect the face on every needed original
    frame (full resolution), scale it into ``tile.tiles`` (``cv2.INTER_AREA``)
    and write the enrollment frames to ``gallery_dir/<name>/``.

    The scale is fixed on the first needed frame: target height / its face
    height (``ValueError`` when it has no face)."""
    needed = set(int(i) for i in needed)
    last = max(max(needed), max(tile.enroll) if gallery_dir is not None else 0)
    cap = cv2.VideoCapture(str(tile.video))
    try:
        for i in range(last + 1):
            ok, frame = cap.read()
            if not ok:
                raise RuntimeError(f"{tile.video}: cannot read frame {i}")
            if i in needed:
                box = _best_box(detect, frame)
                if not tile.tiles:
                    if box is None:
                        raise ValueError(f"{tile.video}: no face on frame {i}, cannot set the scale")
                    s = tile.target_height / (box[3] - box[1])
                    h, w = frame.shape[:2]
                    nw, nh = max(2, int(round(w * s))), max(2, int(round(h * s)))
                    tile.scale = (nw / w, nh / h)
                nw, nh = int(round(frame.shape[1] * tile.scale[0])), int(round(frame.shape[0] * tile.scale[1]))
                tile.boxes[i] = box
                tile.tiles[i] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
            if gallery_dir is not None and i in tile.enroll:
                folder = Path(gallery_dir) / tile.name
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"{tile.name}_{i:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    finally:
        cap.release()


def place_tiles(tiles: Sequence[Tile], width: int, height: int, seed: int) -> None:
    """Set each tile's offset: side by side, centred in equal columns, at a
    random height in the middle half of the frame."""
    rng = np.random.default_rng([seed, 4111])
    for j, t in enumerate(tiles):
        th, tw = next(iter(t.tiles.values())).shape[:2]
        cx = (j + 0.5) * width / len(tiles)
        cy = rng.uniform(0.3, 0.7) * height
        t.offset = (int(round(cx - tw / 2)), int(round(cy - th / 2)))


def feathered_alpha(h: int, w: int, feather: float = 0.12) -> np.ndarray:
    """``(h, w, 1)`` float32: 1 inside, falling linearly to 0 over the outer
    ``feather`` of each side (the tile blends into the background)."""
    fy, fx = max(1.0, feather * h), max(1.0, feather * w)
    y = np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5) / fy
    x = np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5) / fx
    return np.clip(np.minimum(y[:, None], x[None, :]), 0, 1).astype(np.float32)[..., None]


def _gt_box(tile: Tile, i: int) -> Tuple[np.ndarray, float]:
    """The mapped xyxy gt box of original frame ``i`` and its visibility (0
    when the detector found nothing there: the nearest frame's box)."""
    box, vis = tile.boxes.get(i), 1.0
    if box is None:
        found = [j for j, b in tile.boxes.items() if b is not None]
        box, vis = tile.boxes[min(found, key=lambda j: abs(j - i))], 0.0
    sx, sy = tile.scale
    ox, oy = tile.offset
    return np.array([box[0] * sx + ox, box[1] * sy + oy, box[2] * sx + ox, box[3] * sy + oy]), vis


def write_composite(out_dir: Path, videos: Sequence[Path], detect, *, heights: Sequence[float] = DEFAULT_HEIGHTS,
                    num_frames: int = 250, width: int = 1280, height: int = 720, fps: float = 25.0, seed: int = 0,
                    codec: str = "h264", bitrate: Optional[int] = None, enroll_count: int = 4) -> gtio.GroundTruth:
    """Write the composite clip, its ground truth and its gallery under ``out_dir``.

    Parameters
    ----------
    videos : sequence of Path
        The talking heads, one speaker each.
    detect : callable
        BGR image -> ``(N, 4)`` xyxy boxes, ``(N,)`` scores
        (:func:`evaluation.sprites.yolo_detect_fn`).
    heights : sequence of float
        Face height in the composite, one per video.
    num_frames, width, height, fps, seed
        The clip (the seed places the tiles and draws the background).
    codec, bitrate
        See :func:`evaluation.video.open_writer`.
    enroll_count : int
        Frames per speaker written to ``out_dir/gallery/<speaker>/`` (3 to 5).
    """
    from .synth import concat_tables, make_backgrounds
    from .video import broadcast_bitrate, open_writer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tiles = plan_tiles(videos, heights, enroll_count=enroll_count)
    for t in tiles:
        read_tile(t, [source_index(k, t.fps, fps, t.used) for k in range(num_frames)], detect, out_dir / "gallery")
    place_tiles(tiles, width, height, seed)
    bg = make_backgrounds(1, width, height, seed)[0]
    bitrate = bitrate or (broadcast_bitrate(width, height) if codec == "h264" else None)
    writer, used_codec = open_writer(out_dir / "video.mp4", fps, (width, height), codec=codec, bitrate=bitrate)
    tables = []
    try:
        for k in range(num_frames):
            frame, rows = _composite_frame(k, tiles, bg, fps)
            writer.write(frame)
            tables.append(rows)
    finally:
        writer.release()
    truth = gtio.GroundTruth(concat_tables(tables), _identities(tiles, heights), fps, num_frames, [])
    _write_files(out_dir, truth, tiles, width=width, height=height, seed=seed,
                 info={"video_codec": used_codec, "bitrate": bitrate if used_codec == "h264" else None})
    return truth


def _composite_frame(k: int, tiles: Sequence[Tile], bg: np.ndarray, fps: float):
    """Composite frame ``k`` (0-based) and its gt rows (1-based frame, gt id = tile index + 1)."""
    frame = bg.copy()
    ids, tlwh, vis = [], [], []
    for j, t in enumerate(tiles):
        i = source_index(k, t.fps, fps, t.used)
        img = t.tiles[i]
        h, w = img.shape[:2]
        x0, y0 = t.offset
        a = feathered_alpha(h, w)
        roi = frame[y0:y0 + h, x0:x0 + w]
        roi[:] = (img.astype(np.float32) * a + roi.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8)
        box, v = _gt_box(t, i)
        ids.append(j + 1)
        tlwh.append([box[0], box[1], box[2] - box[0], box[3] - box[1]])
        vis.append(v)
    return frame, gtio.BoxTable(np.full(len(ids), k + 1), np.array(ids), np.array(tlwh), np.array(vis))


def _identities(tiles: Sequence[Tile], heights: Sequence[float]) -> Dict[int, gtio.Identity]:
    """gt id -> the speaker (enrolled), with where the tile comes from."""
    return {j + 1: gtio.Identity(t.name, True, {
        "video": str(t.video), "target_height": float(h), "scale": [round(s, 6) for s in t.scale],
        "offset": list(t.offset), "segment_frames": [0, t.used], "enrollment_frames": t.enroll})
        for j, (t, h) in enumerate(zip(tiles, heights))}


def _write_files(out_dir: Path, truth: gtio.GroundTruth, tiles: Sequence[Tile], *, width: int, height: int,
                 seed: int, info: dict) -> None:
    """``gt/gt.txt``, ``identities.json``, ``cuts.txt`` (none), ``seqinfo.ini``, ``synth.json``."""
    gtio.write_mot_gt(out_dir / gtio.GT_FILE, truth.boxes)
    gtio.write_identities(out_dir / gtio.IDENTITIES_FILE, truth.identities)
    gtio.write_cuts(out_dir / gtio.CUTS_FILE, [])
    gtio.write_seqinfo(out_dir / gtio.SEQINFO_FILE, name=out_dir.name, frame_rate=truth.frame_rate,
                       num_frames=truth.num_frames, width=width, height=height)
    h = truth.boxes.tlwh[:, 3]
    meta = {"composite": True, "seed": seed, "num_frames": truth.num_frames, "width": width, "height": height,
            "fps": truth.frame_rate, "num_shots": 1, "paths": {}, "videos": [str(t.video) for t in tiles],
            "face_height": {"min": float(h.min()), "median": float(np.median(h)), "max": float(h.max())},
            "gt_boxes_without_detection": int((truth.boxes.score == 0).sum()), **info}
    (out_dir / "synth.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
