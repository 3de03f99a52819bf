"""Prove the GPU path on a CUDA machine in at most 10 minutes; a tiny CPU smoke elsewhere.

    FACETRACK_MODELS_DIR=../shared/models python scripts/gpu_check.py [VIDEO] [--frames 300] [--streams 8 16]

On a CUDA machine it checks and measures, in this order (the two stream
steps each stop early after their share of the time budget, ``--budget``,
540 s by default, and TensorRT is tried only when 120 s are left, its export
in a child process killed when the budget runs out):

1. the embedder's onnxruntime session runs on ``CUDAExecutionProvider``
   (``session.get_providers()``, not the request) and its ms per face;
2. the ultralytics detector on ``cuda`` with fp16 (the loaded network's
   parameter dtype and device are read back) and its ms per 1080p frame;
3. single stream: the default pipeline (``configs/default.yaml``) on the 1080p
   video decoded by ``pipeline.sources.open_source`` (looped to ``--frames``),
   FPS and per-frame latency p50 / p95 / p99 (decode included, no gallery, no
   overlay or encode);
4. 8 and 16 simultaneous streams: one pipeline per stream (every-frame
   detection, so every frame of every stream is in the batch), the detector
   called once per step on the frames of all streams (``detect_batch``),
   aggregate FPS and per-step latency p99. The frames are decoded once into
   memory (decode is excluded here; step 3 includes it);
5. a TensorRT engine of the detector (fp16, dynamic batch), exported into a
   temporary folder from the ``.pt``, when ``tensorrt`` is installed and the
   export succeeds; skipped cleanly (with the reason) otherwise.

Without CUDA it prints one ``no CUDA device`` line and runs the same code
with ``device=cpu`` on a few frames and two streams, then exits 0. The last
thing printed is a JSON summary (after a ``JSON summary:`` line). Nothing is
downloaded: the weights come from ``FACETRACK_MODELS_DIR`` (or
``--models-dir``) and ultralytics is imported offline.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "facenet_pytorch_pedestrians.mp4"
EVERY_FRAME = {"detect_interval": 1, "warmup_detect_interval": 1, "crop_detection": False}
SMOKE_FRAMES = 4
SMOKE_STREAMS = (2,)
#: Seconds the whole run may take by default (the GPU machine's command limit is 600 s).
DEFAULT_BUDGET_S = 540.0

log = logging.getLogger("gpu_check")


class Budget:
    """Seconds left of the run's time budget."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


class HandedDetector:
    """A detector whose next answer was computed elsewhere (in a batch across streams)."""

    def __init__(self) -> None:
        self.next = None

    def detect(self, frame):
        out, self.next = self.next, None
        if out is None:
            raise RuntimeError("HandedDetector.detect called without a batched result")
        return out


def percentiles(ms: List[float]) -> Dict[str, float]:
    a = np.asarray(ms, float)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "max_ms": round(float(a.max()), 2)}


def timed_ms(fn: Callable, repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` (after one untimed call)."""
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - t0))
    return round(float(np.median(samples)), 2)


def environment(device: str) -> dict:
    import onnxruntime
    import torch

    env = {"device": device, "torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "onnxruntime": onnxruntime.__version__, "onnxruntime_providers": onnxruntime.get_available_providers()}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1)
    return env


def check_embedder(weights: Path, device: str, repeats: int) -> tuple:
    from models.embedder import FaceEmbedder

    embedder = FaceEmbedder(weights, device=device)
    crops = np.random.default_rng(0).integers(0, 256, (32, 112, 112, 3), dtype=np.uint8)
    ms = timed_ms(lambda: embedder.embed_crops(crops), repeats) / len(crops)
    out = {"weights": embedder.path.name, "session_providers": embedder.providers,
           "cuda_execution_provider": embedder.providers[0] == "CUDAExecutionProvider",
           "ms_per_face_batch_32": round(ms, 3)}
    return embedder, out


def network_precision(detector) -> dict:
    """The dtype and device of the loaded network's parameters, read back from ultralytics."""
    predictor = getattr(detector._model, "predictor", None)
    net = getattr(predictor, "model", None)
    net = net if net is not None else detector._model.model
    try:
        param = next(getattr(net, "model", net).parameters())
        return {"param_dtype": str(param.dtype).replace("torch.", ""), "param_device": str(param.device),
                "backend_fp16": bool(getattr(net, "fp16", False))}
    except (StopIteration, AttributeError, TypeError):  # exported backends (engine) have no torch parameters
        return {"backend_fp16": bool(getattr(net, "fp16", False)), "param_dtype": None, "param_device": None}


def check_detector(weights: Path, device: str, frame: np.ndarray, repeats: int, **kw) -> tuple:
    from models.detector import FaceDetector

    # cpu_format=None: the CPU smoke runs the .pt in torch, the code path CUDA runs.
    detector = FaceDetector(weights, device=device, half=device.startswith("cuda"), cpu_format=None, **kw)
    detector.warmup()
    found = len(detector.detect(frame))
    out = {"weights": detector.path.name, "device": detector.device, "half": detector.half,
           "faces_on_first_frame": found, "ms_per_frame_1080p": timed_ms(lambda: detector.detect(frame), repeats)}
    out.update(network_precision(detector))
    return detector, out


_TRT_EXPORT = """
import sys
sys.path.insert(0, sys.argv[4])
from models.detector import ultralytics_offline
with ultralytics_offline() as ultralytics:
    out = ultralytics.YOLO(sys.argv[1]).export(format="engine", half=True, dynamic=True, batch=int(sys.argv[2]),
                                               imgsz=640, device=sys.argv[3], verbose=False)
print(out)
"""


def check_tensorrt(pt: Path, device: str, frame: np.ndarray, repeats: int, batch: int, work: Path,
                   timeout: float) -> dict:
    """Export a TensorRT engine (fp16, dynamic batch up to ``batch``) and time it; a reason when it cannot.

    The export runs in a child process killed after ``timeout`` seconds, so a slow build cannot overrun the budget.
    """
    if not device.startswith("cuda"):
        return {"skipped": "no CUDA device"}
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return {"skipped": "the tensorrt package is not installed (pip install tensorrt)"}
    local = work / pt.name
    shutil.copy2(pt, local)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", _TRT_EXPORT, str(local), str(batch), device, str(REPO)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"the TensorRT export took longer than the {timeout:.0f} s left"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).exists():
        return {"skipped": f"TensorRT export failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}"}
    export_s = round(time.perf_counter() - t0, 1)
    try:
        _, out = check_detector(Path(lines[-1]), device, frame, repeats)
    except Exception as exc:  # noqa: BLE001 - a built engine that does not load is reported, not fatal
        return {"skipped": f"the TensorRT engine did not load: {type(exc).__name__}: {exc}"[:400]}
    out["export_seconds"] = export_s
    return out


def looped_frames(video: Path, count: int):
    """``count`` frames of ``video`` decoded by ``open_source``, reopened at its end; yields (index, image, decode ms)."""
    from pipeline.sources import open_source

    source, index = open_source(str(video)), 0
    try:
        while index < count:
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                source.close()
                source = open_source(str(video))
                continue
            yield index, frame.image, 1000 * (time.perf_counter() - t0)
            index += 1
    finally:
        source.close()


def single_stream(config: dict, detector, embedder, video: Path, frames: int, max_seconds: float) -> dict:
    from facetrack.build import build_pipeline

    pipeline = build_pipeline(config, detector, embedder)
    latency, decode, faces = [], [], 0
    t_start = time.perf_counter()
    t0 = t_start
    for index, image, decode_ms in looped_frames(video, frames):
        result = pipeline.process(image, index, index / 25.0)
        faces += len(result.track_ids)
        now = time.perf_counter()
        latency.append(1000 * (now - t0))
        decode.append(decode_ms)
        t0 = now
        if now - t_start > max_seconds:
            break
    seconds = time.perf_counter() - t_start
    frames = len(latency)
    out = {"frames": frames, "fps": round(frames / seconds, 2), "latency": percentiles(latency),
           "decode_ms_median": round(float(np.median(decode)), 2), "tracked_faces": faces,
           "detect_interval": pipeline.schedule.detect_interval}
    return out


def multi_stream(config: dict, detector, embedder, frames: List[np.ndarray], streams: int, steps: int,
                 max_seconds: float) -> dict:
    from facetrack.build import build_pipeline

    handed = [HandedDetector() for _ in range(streams)]
    pipelines = [build_pipeline(config, h, embedder, **EVERY_FRAME) for h in handed]
    offsets = [(s * len(frames)) // streams for s in range(streams)]
    step_ms, faces, detected = [], 0, 0
    t_start = time.perf_counter()
    for step in range(steps):
        t0 = time.perf_counter()
        batch = [frames[(offsets[s] + step) % len(frames)] for s in range(streams)]
        for h, dets in zip(handed, detector.detect_batch(batch)):
            h.next = dets
            detected += len(dets)
        for s, pipe in enumerate(pipelines):
            faces += len(pipe.process(batch[s], step, step / 25.0).track_ids)
        step_ms.append(1000 * (time.perf_counter() - t0))
        if time.perf_counter() - t_start > max_seconds:
            break
    seconds = time.perf_counter() - t_start
    steps = len(step_ms)
    return {"streams": streams, "steps": steps, "aggregate_fps": round(streams * steps / seconds, 2),
            "per_stream_fps": round(steps / seconds, 2), "step_latency": percentiles(step_ms),
            "detected_faces": detected, "tracked_faces": faces}


def decode_all(video: Path, limit: int) -> List[np.ndarray]:
    return [image for _, image, _ in looped_frames(video, limit)]


def run_checks(args, device: str, budget: Budget, summary: dict) -> None:
    from facetrack.config import load_config
    from models.weights import resolve_weights

    smoke = not device.startswith("cuda")
    frames = SMOKE_FRAMES if smoke else args.frames
    streams = SMOKE_STREAMS if smoke else tuple(args.streams)
    repeats = 2 if smoke else 30
    config = load_config(args.config)
    pt = resolve_weights(args.detector, models_dir=args.models_dir, allow_download=False)
    emb = resolve_weights(args.embedder, models_dir=args.models_dir, allow_download=False)
    first = decode_all(args.video, 1)[0]
    summary["video"] = {"path": str(args.video), "width": first.shape[1], "height": first.shape[0]}
    embedder, summary["embedder"] = check_embedder(emb, device, repeats)
    detector, summary["detector"] = check_detector(pt, device, first, repeats,
                                                   input_size=config["detector"].get("input_size", 640))
    # The stream figures first, each with a share of what is left; TensorRT (minutes to build) last.
    share = budget.left() * 0.6 / (1 + len(streams))
    summary["single_stream"] = single_stream(config, detector, embedder, args.video, frames, share)
    memory = decode_all(args.video, min(frames, 120))
    summary["multi_stream"] = [multi_stream(config, detector, embedder, memory, n, frames, share) for n in streams]
    with tempfile.TemporaryDirectory() as work:
        summary["tensorrt"] = (check_tensorrt(pt, device, first, repeats, max(streams), Path(work),
                                              timeout=budget.left() - 30)
                               if budget.left() > 120 else {"skipped": "time budget"})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__.split("\n\n")[0])
    p.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO,
                   help=f"a 1080p video (default {DEFAULT_VIDEO})")
    p.add_argument("--frames", type=int, default=300, help="frames of the single-stream run and most steps of a "
                   "multi-stream run (CUDA; the CPU smoke uses %d)" % SMOKE_FRAMES)
    p.add_argument("--streams", type=int, nargs="+", default=[8, 16], help="simultaneous streams (default 8 16)")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds after which remaining steps are skipped")
    p.add_argument("--detector", default="yolov8n-face", help="detector weights (.pt; name or path)")
    p.add_argument("--embedder", default="arcface", help="embedder weights (name, role or path)")
    p.add_argument("--models-dir", default=None, help="folder of the weights (else $FACETRACK_MODELS_DIR)")
    p.add_argument("--config", default=None, help="YAML configuration (default configs/default.yaml)")
    p.add_argument("--json-out", type=Path, help="also write the JSON summary to this file")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.video.is_file():
        print(f"error: no such video: {args.video}", file=sys.stderr)
        return 2
    if args.frames < 1 or any(n < 1 for n in args.streams):
        print("error: --frames and --streams must be >= 1", file=sys.stderr)
        return 2
    from models.device import cuda_device_count

    budget = Budget(args.budget)
    device = "cuda:0" if cuda_device_count() > 0 else "cpu"
    if device == "cpu":
        print(f"no CUDA device (torch.cuda.is_available() is False): running a {SMOKE_FRAMES}-frame CPU smoke of "
              "the same code path; the GPU figures need a CUDA machine", flush=True)
    summary = {"cuda": device != "cpu", "environment": environment(device)}
    t0 = time.perf_counter()
    from models.weights import WeightsError

    try:
        run_checks(args, device, budget, summary)
    except WeightsError as exc:   # missing weights: one line, never a download
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(summary, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print("JSON summary:")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
