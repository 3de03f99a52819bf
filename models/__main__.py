"""Command line of the models package: ``python -m models <command>``.

Commands
--------
check-install          exactly one onnxruntime distribution is installed (exit 1 otherwise); its providers
info                   resolved weight files, devices and onnxruntime providers
detect IMAGE [--json]  faces with box, score and 5 landmarks
compare IMAGE_A IMAGE_B  cosine similarity of the largest face in each (the last line is the number)
bench                  detector ms/frame at 640 and embedder ms/face at batch 1, 8, 16, 32

Options ``--detector``, ``--embedder`` (a path or a registered name),
``--device`` and ``--models-dir`` apply to every command that loads models.
Errors (unreadable image, no face, missing weights, wrong model) print one
message to stderr and exit with status 1, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import metadata
from typing import List, Optional

EXIT_ERROR = 1
DEFAULT_DETECTOR = "yolov8n-face"
DEFAULT_EMBEDDER = "arcface"


class CliError(Exception):
    """An error reported to the user as one line, exit status 1."""


def _onnxruntime_distributions() -> List[str]:
    return sorted({d.metadata["Name"] for d in metadata.distributions()
                   if (d.metadata["Name"] or "").lower().startswith("onnxruntime")})


def cmd_check_install(args) -> int:
    dists = _onnxruntime_distributions()
    if len(dists) != 1:
        print(f"expected exactly one onnxruntime distribution, found {dists or 'none'} "
              "(insightface must be installed with --no-deps; see the Makefile)", file=sys.stderr)
        return EXIT_ERROR
    import onnxruntime

    print(f"onnxruntime distribution: {dists[0]} {metadata.version(dists[0])}")
    print(f"onnxruntime providers: {', '.join(onnxruntime.get_available_providers())}")
    return 0


def _resolve(name: str, args, *, download: Optional[bool] = None):
    from models.weights import resolve_weights

    allow = (not args.no_download) if download is None else download
    return resolve_weights(name, models_dir=args.models_dir, allow_download=allow, progress=True)


def _load_detector(args, path=None):
    from models.detector import FaceDetector

    return FaceDetector(path or _resolve(args.detector, args), device=args.device,
                        confidence_threshold=args.confidence)


def _load_embedder(args, path=None):
    from models.embedder import FaceEmbedder

    return FaceEmbedder(path or _resolve(args.embedder, args), device=args.device, num_threads=args.threads)


def cmd_info(args) -> int:
    from models.device import cuda_device_count, onnx_providers, resolve_device
    from models.weights import REGISTRY, ROLES, WeightsError, default_cache_dir, MODELS_DIR_ENV, where_from

    import os

    print(f"models dir: {args.models_dir or '-'}; {MODELS_DIR_ENV}={os.environ.get(MODELS_DIR_ENV, '-')}; "
          f"cache: {default_cache_dir()}")
    for label, name in (("detector", args.detector), ("embedder", args.embedder)):
        try:
            print(f"{label}: {name} -> {_resolve(name, args, download=False)}")
        except WeightsError as exc:
            # Where it can come from, as the table below says it (not "downloading is disabled": a run downloads).
            names = ROLES.get(name) or ((name,) if name in REGISTRY else ())
            print(f"{label}: {name} -> not found locally; "
                  + ("; ".join(where_from(REGISTRY[n]) for n in names) or str(exc)))
    for name, spec in REGISTRY.items():
        try:
            where = str(_resolve(name, args, download=False))
        except WeightsError:
            where = f"not found locally; {where_from(spec)}"
        print(f"  {name:18s} {spec.filename:20s} {where}")
    print("roles: " + "; ".join(f"{role} = first of {', '.join(names)}" for role, names in ROLES.items()))
    device = resolve_device(args.device)
    print(f"device: {args.device} -> {device} (CUDA devices: {cuda_device_count()})")
    print(f"onnxruntime providers for {device}: {onnx_providers(device)}")
    return 0


def _read(path: str):
    from models.io import read_image

    return read_image(path)


def cmd_detect(args) -> int:
    image = _read(args.image)
    detector = _load_detector(args)
    dets = detector.detect(image)
    faces = []
    for i in range(len(dets)):
        face = {"box_xyxy": [round(float(v), 2) for v in dets.xyxy[i]],
                "score": round(float(dets.confidence[i]), 4),
                "landmarks": None if dets.landmarks is None else
                [[round(float(x), 2), round(float(y), 2)] for x, y in dets.landmarks[i]]}
        faces.append(face)
    if args.json:
        print(json.dumps({"image": args.image, "width": image.shape[1], "height": image.shape[0],
                          "faces": faces}, indent=2))
    else:
        print(f"{args.image}: {len(faces)} face(s)")
        for i, face in enumerate(faces):
            marks = "none" if face["landmarks"] is None else " ".join(f"({x:.1f},{y:.1f})" for x, y in face["landmarks"])
            box = ",".join(f"{v:.1f}" for v in face["box_xyxy"])
            print(f"face {i}: score {face['score']:.3f} box {box} landmarks {marks}")
    if not faces:
        print(f"no face found in {args.image}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _largest_face_embedding(path: str, detector, embedder):
    import numpy as np

    image = _read(path)
    dets = detector.detect(image)
    if len(dets) == 0:
        raise CliError(f"no face found in {path}")
    largest = int(np.argmax(dets.width * dets.height))
    return embedder.embed(image, dets[largest])[0]


def cmd_compare(args) -> int:
    for path in (args.image_a, args.image_b):  # fail on unreadable images and missing weights before loading
        _read(path)
    detector_path, embedder_path = _resolve(args.detector, args), _resolve(args.embedder, args)
    detector = _load_detector(args, detector_path)
    embedder = _load_embedder(args, embedder_path)
    a = _largest_face_embedding(args.image_a, detector, embedder)
    b = _largest_face_embedding(args.image_b, detector, embedder)
    similarity = float(a @ b)
    print(f"embedder {embedder.identity.name}: cosine similarity of the largest faces")
    print(f"{similarity:.4f}")
    return 0


def cmd_bench(args) -> int:
    from models.bench import bench_detector, bench_embedder, bench_frame

    image = _read(args.image) if args.image else None
    results = {}
    if not args.skip_detector:
        detector = _load_detector(args)
        frame = bench_frame(640, image)
        detector.warmup()
        t = bench_detector(detector, frame, repeats=args.repeats)
        print(f"{detector.path.name} on {detector.device}: {t}")
        results["detector_640"] = t.as_dict()
    if not args.skip_embedder:
        embedder = _load_embedder(args)
        timings = bench_embedder(embedder, batch_sizes=args.batch_sizes, repeats=max(3, args.repeats // 3))
        for b, t in timings.items():
            print(f"{embedder.path.name} on {embedder.providers[0]}: {t} per face")
            results[f"embedder_batch_{b}"] = t.as_dict()
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def build_parser(prog: str = "python -m models") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--detector", default=DEFAULT_DETECTOR,
                        help=f"detector weights: a path or a registered name (default {DEFAULT_DETECTOR})")
    common.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                        help=f"embedder weights: a path, a registered name or a role (default {DEFAULT_EMBEDDER})")
    common.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    common.add_argument("--models-dir", default=None, help="folder searched for weights first")
    common.add_argument("--no-download", action="store_true", help="never download missing weights")
    common.add_argument("--confidence", type=float, default=0.5, help="detector confidence threshold (default 0.5)")
    common.add_argument("--threads", type=int, default=0, help="onnxruntime threads for the embedder (0 = default)")
    common.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")

    parser = argparse.ArgumentParser(prog=prog, description="Face models: check the install, find the weights, "
                                     "detect, compare and time.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-install", help="exactly one onnxruntime distribution; list its providers")
    sub.add_parser("info", parents=[common], help="resolved weight files, devices and providers")
    p = sub.add_parser("detect", parents=[common], help="detect faces in an image")
    p.add_argument("image", help="the photo")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("compare", parents=[common], help="cosine similarity of the largest faces of two images")
    p.add_argument("image_a", help="the first photo")
    p.add_argument("image_b", help="the second photo")
    p = sub.add_parser("bench", parents=[common], help="detector and embedder timings")
    p.add_argument("--image", default=None, help="photo to time the detector on (resized to 640x640)")
    p.add_argument("--repeats", type=int, default=30, help="timed detector calls (embedder: a third)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32],
                   help="embedder batch sizes to time [default: 1 8 16 32]")
    p.add_argument("--skip-detector", action="store_true", help="do not time the detector")
    p.add_argument("--skip-embedder", action="store_true", help="do not time the embedder")
    p.add_argument("--json", action="store_true", help="also print the timings as JSON")
    return parser


COMMANDS = {"check-install": cmd_check_install, "info": cmd_info, "detect": cmd_detect,
            "compare": cmd_compare, "bench": cmd_bench}


def main(argv: Optional[List[str]] = None, prog: str = "python -m models") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from models.device import DeviceUnavailableError
    from models.weights import WeightsError

    try:
        return COMMANDS[args.command](args)
    except (CliError, ValueError, FileNotFoundError, WeightsError, DeviceUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
