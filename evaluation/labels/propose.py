"""Draw detector proposals on video frames so that a person can check them by eye.

A labelling aid, not part of the library (nothing imports it). For each
requested 1-based frame it writes, under ``--out``:

- ``f<frame>_full.png``: the frame with every proposal drawn and numbered,
  optionally upscaled (``--scale``);
- ``f<frame>_crops.png``: each proposal's surroundings cut out, upscaled to
  ``--crop-size`` pixels and tiled, with its index, size and score;
- ``f<frame>_props.csv``: ``index,x,y,w,h,score`` of the proposals (``tlwh``).

``--labels CSV`` draws the rows of an existing labels file for those frames
instead of (or, with ``--both``, in addition to) the detector's proposals, so
that a finished label file can be checked the same way.

Example::

    python evaluation/labels/propose.py ../shared/data/video/short_hamilton_clip.mp4 \
        --frames 2 6 14 18 --out /tmp/props --conf 0.2 --input-size 1280 --scale 2
"""
from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import cv2
import numpy as np

from evaluation.detector_recall import read_frames


def label_rows(path, frame):
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if int(r["frame"]) == frame:
                rows.append((float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"]), r["name"]))
    return rows


def tile_crops(img, boxes, captions, crop_size, context):
    tiles = []
    h_img, w_img = img.shape[:2]
    for (x, y, w, h), cap in zip(boxes, captions):
        side = max(w, h) * context
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w_img, cx + side / 2)), int(min(h_img, cy + side / 2))
        crop = img[y0:y1, x0:x1].copy()
        if crop.size == 0:
            continue
        f = crop_size / max(crop.shape[:2])
        crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        bx0, by0 = int((x - x0) * f), int((y - y0) * f)
        cv2.rectangle(crop, (bx0, by0), (int(bx0 + w * f), int(by0 + h * f)), (0, 255, 0), 1)
        tile = np.zeros((crop_size + 22, crop_size, 3), np.uint8)
        tile[: crop.shape[0], : crop.shape[1]] = crop
        cv2.putText(tile, cap, (2, crop_size + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        tiles.append(tile)
    if not tiles:
        return None
    per_row = max(1, 1400 // crop_size)
    while len(tiles) % per_row:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + per_row]) for i in range(0, len(tiles), per_row)]
    return np.vstack(rows)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("--frames", type=int, nargs="+", required=True, help="1-based frame numbers")
    p.add_argument("--out", required=True)
    p.add_argument("--weights", default=os.path.join(os.environ.get("FACETRACK_MODELS_DIR", "."), "yolov8n-face.pt"))
    p.add_argument("--conf", type=float, default=0.2)
    p.add_argument("--input-size", type=int, default=1280)
    p.add_argument("--scale", type=float, default=1.0, help="upscale of the full-frame picture")
    p.add_argument("--crop-size", type=int, default=200)
    p.add_argument("--context", type=float, default=2.5, help="crop side / box side")
    p.add_argument("--labels", help="draw this labels CSV instead of proposals")
    p.add_argument("--both", action="store_true", help="with --labels, also draw proposals")
    p.add_argument("--roi", type=int, nargs=4, metavar=("X", "Y", "W", "H"),
                   help="also write f<frame>_roi.png: this region upscaled by --roi-scale")
    p.add_argument("--roi-scale", type=float, default=4.0)
    return p


def proposals(detector, img, csv_path):
    """Detector boxes (tlwh), captions and colours; also written to ``csv_path``."""
    boxes, captions = [], []
    det = detector.detect(img)
    with open(csv_path, "w") as fh:
        fh.write("index,x,y,w,h,score\n")
        for i, ((x1, y1, x2, y2), s) in enumerate(zip(det.xyxy, det.confidence)):
            w, h = x2 - x1, y2 - y1
            fh.write(f"{i},{x1:.0f},{y1:.0f},{w:.0f},{h:.0f},{s:.2f}\n")
            boxes.append((x1, y1, w, h))
            captions.append(f"{i} {w:.0f}x{h:.0f} {s:.2f}")
    return boxes, captions, [(0, 255, 0)] * len(boxes)


def draw_boxes(canvas, boxes, captions, colours, origin=(0, 0), r=1.0, font_scale=0.5, thickness=1):
    """Draw ``tlwh`` boxes (source pixels) and their first caption word on ``canvas``, which shows the source from
    ``origin`` upscaled by ``r``."""
    ox, oy = origin
    for (bx, by, bw, bh), cap, col in zip(boxes, captions, colours):
        p0 = (int((bx - ox) * r), int((by - oy) * r))
        p1 = (int((bx + bw - ox) * r), int((by + bh - oy) * r))
        cv2.rectangle(canvas, p0, p1, col, 1)
        cv2.putText(canvas, cap.split(" ")[0], (p0[0], p0[1] - 3), cv2.FONT_HERSHEY_SIMPLEX, font_scale, col, thickness)
    return canvas


def draw_full(img, boxes, captions, colours, scale):
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return draw_boxes(big, boxes, captions, colours, r=scale)


def draw_roi(img, boxes, captions, colours, roi, r):
    """The region ``roi`` (x, y, w, h) upscaled by ``r`` with the boxes and a pixel ruler."""
    x, y, w, h = roi
    out = cv2.resize(img[y:y + h, x:x + w], None, fx=r, fy=r, interpolation=cv2.INTER_CUBIC)
    draw_boxes(out, boxes, captions, colours, origin=(x, y), r=r, font_scale=0.6, thickness=2)
    # ticks every 10 source pixels and coordinates every 50, for reading positions by eye
    for g in range(0, max(w, h), 10):
        if g < w:
            cv2.line(out, (int(g * r), 0), (int(g * r), 4), (255, 255, 0), 1)
            if g % 50 == 0:
                cv2.putText(out, str(x + g), (int(g * r), 12), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 0), 1)
        if g < h:
            cv2.line(out, (0, int(g * r)), (4, int(g * r)), (255, 255, 0), 1)
            if g % 50 == 0:
                cv2.putText(out, str(y + g), (0, int(g * r)), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 0), 1)
    return out


def main():
    args = build_parser().parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = read_frames(args.video, args.frames)
    detector = None
    if args.labels is None or args.both:
        from models.detector import FaceDetector
        detector = FaceDetector(args.weights, device="cpu", confidence_threshold=args.conf,
                                input_size=args.input_size)
    for frame, img in sorted(frames.items()):
        boxes, captions, colours = [], [], []
        if detector is not None:
            boxes, captions, colours = proposals(detector, img, out / f"f{frame}_props.csv")
        if args.labels:
            for x, y, w, h, name in label_rows(args.labels, frame):
                boxes.append((x, y, w, h))
                captions.append(f"{name.split('/')[-1][:18]} {h:.0f}")
                colours.append((0, 128, 255))
        cv2.imwrite(str(out / f"f{frame}_full.png"), draw_full(img, boxes, captions, colours, args.scale))
        tiles = tile_crops(img, boxes, captions, args.crop_size, args.context)
        if tiles is not None:
            cv2.imwrite(str(out / f"f{frame}_crops.png"), tiles)
        if args.roi:
            roi = draw_roi(img, boxes, captions, colours, args.roi, args.roi_scale)
            cv2.imwrite(str(out / f"f{frame}_roi.png"), roi)
        print(f"frame {frame}: {len(boxes)} boxes -> {out}")


if __name__ == "__main__":
    main()
