"""Speed and cost: the pipeline against the naive baseline, per stage, with
peak memory, on CPU and on CUDA when present; and scaling with the number of
faces per frame and the size of the gallery.

Both the pipeline (``pipeline.runner.Pipeline``, default settings from
``configs/default.yaml`` when it exists) and the naive baseline
(:class:`evaluation.baseline.NaiveBaseline`) go through the same run loop
(``pipeline.loop.run``) with the same overlay and an mp4 file sink, so
decode, draw and encode are timed the same way. When the video has ground
truth (a folder written by ``python -m evaluation synth``), the naming
accuracy of both is scored with :mod:`evaluation.metrics`.

Peak memory is the peak resident set size of this process *during* a run,
sampled every 10 ms (models loaded before the run count; the first run of a
process also pays for lazy initialisation).
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import gt as gtio

log = logging.getLogger(__name__)

#: Stages reported per frame, in pipeline order.
STAGES = ("decode", "scene_cut", "detect", "embed", "track", "identify", "draw", "encode")
#: The stages of the limit report: ``STAGES`` and ``wait`` (the loop waiting for the next decoded frame).
LIMIT_STAGES = STAGES + ("wait",)


# ------------------------------------------------------------- environment
#: Distributions whose versions decide the speed figures.
_VERSIONED = ("torch", "ultralytics", "onnxruntime-gpu", "onnxruntime", "opencv-python", "numpy")


def environment() -> Dict[str, object]:
    """What the speed figures were measured on: CPU model, logical cores,
    Python and the versions of the packages that do the work.

    Returns
    -------
    dict
        ``{"cpu", "logical_cores", "python", "packages": {name: version}}``;
        a package that is not installed is left out.
    """
    import platform
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    packages = {}
    for name in _VERSIONED:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "python": platform.python_version(), "packages": packages}


def format_environment(env: Dict[str, object]) -> str:
    """One line for a report: ``CPU (N logical cores), Python X, pkg ver, ...``."""
    pkgs = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
    return f"{env.get('cpu', '?')} ({env.get('logical_cores', '?')} logical cores), Python {env.get('python', '?')}" \
        + (f", {pkgs}" if pkgs else "")


# ------------------------------------------------------------------ memory
def current_rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


class PeakRSS:
    """Context manager sampling the resident set size; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.01) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.peak = current_rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, current_rss_bytes())


# ------------------------------------------------------------------ composition
def load_settings(config_path: Optional[Path] = None) -> Dict[str, dict]:
    """The YAML configuration (``configs/default.yaml`` by default), every section a dict.

    When no configuration file exists yet, every section is empty, i.e. the
    constructors' defaults.
    """
    from facetrack.config import DEFAULT_CONFIG, SECTIONS, load_config

    path = Path(config_path) if config_path is not None else DEFAULT_CONFIG
    if path.exists():
        return load_config(path)
    log.warning("%s absent: using the constructors' defaults", path)
    return {name: {} for name in SECTIONS} | {"models_dir": None}


@dataclass
class Parts:
    """Models and gallery shared by every run on one device."""

    detector: object
    embedder: object
    index: object
    device: str
    config: dict
    gallery_names: list
    gallery_vectors: np.ndarray


def build_parts(detector_weights: Path, embedder_weights: Path, gallery_dir: Path, *, device: str = "cpu",
                config: Optional[dict] = None, work_dir: Path) -> Parts:
    """Load the models on ``device`` and enroll ``gallery_dir`` into ``work_dir`` (with :mod:`facetrack.build`)."""
    from facetrack.build import build_index, build_models, open_gallery

    config = config if config is not None else load_settings()
    detector, embedder = build_models(config, device=device, detector_weights=detector_weights,
                                      embedder_weights=embedder_weights, progress=False)
    db = Path(work_dir) / f"gallery-{embedder.identity.name}.db"
    store, _ = open_gallery(gallery_dir, detector, embedder, config, db_path=db, progress=False)
    with store:
        index = build_index(store, config)
        names, vectors = store.embeddings()
    return Parts(detector, embedder, index, device, config, list(names), vectors)


def make_pipeline(parts: Parts, *, index=None, **pipeline_overrides):
    """The pipeline with the configured keywords (``pipeline_overrides`` win)."""
    from facetrack.build import build_identifier, build_pipeline

    identifier = build_identifier(index if index is not None else parts.index, parts.config)
    return build_pipeline(parts.config, parts.detector, parts.embedder, identifier, **pipeline_overrides)


def make_baseline(parts: Parts, *, index=None):
    """The naive baseline with the identifier's threshold and margin."""
    from .baseline import NaiveBaseline

    ident = parts.config.get("identifier", {})
    kw = {k: ident[k] for k in ("similarity_threshold", "min_margin") if k in ident}
    # The pipeline's full-frame input per frame size, so that both detect at the same input.
    kw["input_size_for"] = make_pipeline(parts, index=index).full_frame_input_size
    return NaiveBaseline(parts.detector, parts.embedder, index if index is not None else parts.index, **kw)


# ------------------------------------------------------------------ one timed run
def timed_run(processor, video: Path, *, max_frames: Optional[int] = None, annotated: Optional[Path] = None,
              progress: bool = False, warmup_frames: int = 3, tracks_path: Optional[Path] = None,
              names_path: Optional[Path] = None) -> dict:
    """Run ``processor`` over ``video`` through ``pipeline.loop.run`` with an
    overlay and an mp4 sink; return speed, per-stage latency, memory and rows.

    The first ``warmup_frames`` frames are processed beforehand on a separate
    pass (not timed) so lazy initialisation does not count, and the processor
    is reset afterwards. The rows are written as ``demo.py --tracks --names``
    writes them (:class:`pipeline.events.TracksWriter` and
    :class:`pipeline.events.NamesWriter`, to ``tracks_path`` / ``names_path``
    or a temporary folder) and read back, so they are scored exactly as
    ``python -m evaluation score --tracks --names`` scores the demo's.

    Returns
    -------
    dict
        ``frames``, ``seconds``, ``fps``, ``cpu_ms_per_frame`` (CPU time of
        this process, all threads, per frame: less sensitive than wall-clock
        FPS to other programs sharing the machine), ``stage_ms`` (mean
        wall-clock ms per frame per stage), ``peak_rss_mb``, ``faces_embedded``, ``detection_frames`` and
        ``tracks`` (a :class:`evaluation.gt.BoxTable` with names, 1-based frames)
        and ``best_matches`` (per row: unthresholded best name, score, margin;
        only for processors exposing ``last_matches``, else None).
    """
    from pipeline.overlay import Overlay
    from pipeline.loop import run

    if warmup_frames:
        _warm_up(processor, video, warmup_frames)
    best: list = []
    with tempfile.TemporaryDirectory() as tmp:
        annotated = annotated if annotated is not None else Path(tmp) / "annotated.mp4"
        tracks_path = Path(tracks_path) if tracks_path is not None else Path(tmp) / "tracks.txt"
        names_path = Path(names_path) if names_path is not None else Path(tmp) / "names.csv"
        writers, source, sink = _open_run_io(video, annotated, tracks_path, names_path)
        cpu0 = time.process_time()
        with PeakRSS() as mem:
            summary = run(processor, source, [sink], overlay=Overlay(), tracks_writer=writers,
                          max_frames=max_frames, progress=progress, on_frame=_best_match_collector(processor, best))
        cpu_seconds = time.process_time() - cpu0
        tracks = gtio.attach_names(gtio.read_mot(tracks_path), names_file=names_path)
    return _run_figures(summary, cpu_seconds, mem.peak, tracks, best)


def _warm_up(processor, video: Path, frames: int) -> None:
    """Process the first ``frames`` frames of ``video`` untimed, then reset
    ``processor`` (when it has ``reset``), so lazy initialisation is paid
    before a timed run. Fewer frames when the video is shorter."""
    from pipeline.sources import open_source

    src = open_source(str(video))
    try:
        for _ in range(frames):
            f = src.read()
            if f is None:
                break
            processor.process(f.image, f.index, f.timestamp)
    finally:
        src.close()
    if hasattr(processor, "reset"):
        processor.reset()


def _open_run_io(video: Path, annotated: Path, tracks_path: Path, names_path: Path):
    """Open what one run reads and writes: the rows writers, the source and the mp4 sink.

    Returns
    -------
    writers : pipeline.events.FrameWriters
        Tracks rows to ``tracks_path``, per-frame names to ``names_path``.
    source
        ``video`` opened with ``pipeline.sources.open_source``.
    sink : pipeline.sinks.VideoFileSink
        Writes ``annotated`` at the source's frame rate (30 when unknown).

    When opening the source or the sink fails, whatever was opened is
    closed before the error propagates.
    """
    from pipeline.events import FrameWriters, NamesWriter, TracksWriter
    from pipeline.sinks import VideoFileSink
    from pipeline.sources import open_source

    writers = FrameWriters(TracksWriter(tracks_path), NamesWriter(names_path))
    source = None
    try:
        source = open_source(str(video))
        sink = VideoFileSink(annotated, fps=source.fps or 30.0)
    except BaseException:
        writers.close()
        if source is not None:
            source.close()
        raise
    return writers, source, sink


def _best_match_collector(processor, best: list):
    """An ``on_frame`` callback appending, per output row of a frame, the
    processor's unthresholded ``(name, score, margin)`` to ``best``.

    Processors without ``last_matches`` add nothing (``best`` stays empty).
    """
    def collect_best(result):
        m = getattr(processor, "last_matches", None)
        if len(result.track_ids) and m is not None:
            best.extend(zip(m.names, np.asarray(m.score, float), np.asarray(m.margin, float)))

    return collect_best


def _run_figures(summary, cpu_seconds: float, peak_rss_bytes: int, tracks: gtio.BoxTable, best: list) -> dict:
    """The :func:`timed_run` result from the run loop's summary and what was measured around it.

    ``best_matches`` is ``best`` when it has one entry per row of
    ``tracks``, else None.
    """
    return {
        "frames": summary.frames, "seconds": summary.seconds, "fps": summary.fps,
        "cpu_ms_per_frame": 1000.0 * cpu_seconds / max(summary.frames, 1),
        "stage_ms": {s: summary.stage_ms().get(s, 0.0) for s in LIMIT_STAGES},
        "peak_rss_mb": peak_rss_bytes / 2 ** 20,
        "faces_embedded": summary.faces_embedded, "detection_frames": summary.detection_frames,
        "tracks": tracks,
        "best_matches": best if len(best) == len(tracks) else None,
    }


def _find_gt(video: Path, gt_dir: Optional[Path]) -> Optional[Path]:
    """``gt_dir`` when given, else the video's folder when it holds ``gt/gt.txt``, else None."""
    if gt_dir is not None:
        return Path(gt_dir)
    folder = Path(video).resolve().parent
    return folder if (folder / gtio.GT_FILE).exists() else None


def _accuracy(truth, tracks) -> dict:
    """The tracking figures and the ``naming_``-prefixed naming figures of
    :func:`evaluation.metrics.score` that the bench keeps (flat, JSON-ready)."""
    from . import metrics

    r = metrics.score(truth, tracks)
    keep = ("mota", "idf1", "hota", "id_switches", "id_switches_per_1000_gt", "fragmentations", "gt_boxes",
            "misses", "false_positives")
    out = {k: r[k] for k in keep}
    n = r["naming"]
    out.update({f"naming_{k}": n[k] for k in ("matched_boxes", "named_boxes", "correct", "wrong_name",
                                             "named_non_enrolled", "unknown_for_enrolled", "wrong_name_rate",
                                             "naming_precision", "naming_recall", "named_after_warmup",
                                             "time_to_first_correct_name_median", "enrolled_never_named")})
    return out


def available_devices() -> List[str]:
    """``["cpu"]``, plus ``"cuda"`` when torch is installed and sees a GPU."""
    devices = ["cpu"]
    try:
        import torch

        if torch.cuda.is_available():
            devices.append("cuda")
    except Exception:  # noqa: BLE001 - no torch, no CUDA
        pass
    return devices


def run_bench(source: Path, gallery: Path, *, gt_dir: Optional[Path] = None, detector: Path, embedder: Path,
              devices: Optional[Sequence[str]] = None, max_frames: Optional[int] = None, baseline: bool = True,
              progress: bool = False, out_dir: Optional[Path] = None, config_path: Optional[Path] = None,
              repeats: int = 1) -> dict:
    """Time the pipeline (and the naive baseline) on ``source``.

    With ``repeats`` > 1 the runs are interleaved (pipeline, baseline,
    pipeline, baseline, ...), so that another program loading the machine
    for a while slows both rather than one of them, and each one's timing
    figures are those of its run with the median FPS. Accuracy is scored on
    the first run; ``identical_runs`` says whether the later runs gave the
    same tracks and names (they should: the processing is deterministic).

    Returns
    -------
    dict
        ``{"source", "frames", "repeats", "environment", "devices": {device: {"pipeline": run,
        "baseline": run, "speed_ratio", "cpu_time_ratio"}}}`` where each run
        has the keys of :func:`timed_run` (without ``tracks``), plus
        ``fps_runs`` and ``cpu_ms_per_frame_runs`` (every repeat, in order)
        and ``accuracy`` when ground truth exists.
    """
    repeats = _check_repeats(repeats)
    config = load_settings(config_path)
    devices = list(devices) if devices else available_devices()
    gt_path = _find_gt(source, gt_dir)
    truth = gtio.load_ground_truth(gt_path) if gt_path is not None else None
    result = {"source": str(source), "gt": str(gt_path) if gt_path else None, "max_frames": max_frames,
              "repeats": repeats, "environment": environment(),
              "config": {k: config.get(k, {}) for k in ("pipeline", "identifier", "tracker", "gallery")}, "devices": {}}
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(out_dir) if out_dir is not None else Path(work)
        work_dir.mkdir(parents=True, exist_ok=True)
        for device in devices:
            parts = build_parts(detector, embedder, gallery, device=device, config=config, work_dir=work_dir)
            runs = {"pipeline": make_pipeline(parts)}
            if baseline:
                runs["baseline"] = make_baseline(parts)
            res, timings = _interleaved_runs(runs, device, source, truth=truth, repeats=repeats,
                                             max_frames=max_frames, progress=progress, out_dir=out_dir)
            _report_median_runs(res, timings)
            if baseline:
                _add_speed_ratios(res)
            result["devices"][device] = res
    return result


def _check_repeats(repeats) -> int:
    """``repeats`` as an int; ``ValueError`` unless it is a whole number >= 1."""
    if int(repeats) != repeats or int(repeats) < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    return int(repeats)


def _interleaved_runs(runs: Dict[str, object], device: str, source: Path, *, truth: Optional[gtio.GroundTruth],
                      repeats: int, max_frames: Optional[int], progress: bool, out_dir: Optional[Path]):
    """Time every processor of ``runs`` ``repeats`` times, interleaved
    (each one once per round, in the order of ``runs``).

    Run 1 of each is scored (:func:`_score_first_run`) and, with
    ``out_dir``, writes its rows to ``out_dir/<name>-<device>-tracks.txt``
    and ``-names.csv``. A later run whose rows differ from run 1's sets
    ``identical_runs`` False (with a warning).

    Returns
    -------
    res : dict
        name -> run 1's :func:`timed_run` figures (without ``tracks`` and
        ``best_matches``), with ``identical_runs`` and, given ``truth``,
        ``accuracy`` and ``threshold_sweep``.
    timings : dict
        name -> the figures of every run, in order (run 1's dict is the one in ``res``).
    """
    res = {}
    timings: Dict[str, list] = {name: [] for name in runs}
    first_tracks = {}
    for rep in range(repeats):
        for name, proc in runs.items():
            log.info("bench %s on %s%s", name, device, f" (run {rep + 1} of {repeats})" if repeats > 1 else "")
            files = {}
            if out_dir is not None and rep == 0:
                files = {"tracks_path": Path(out_dir) / f"{name}-{device}-tracks.txt",
                         "names_path": Path(out_dir) / f"{name}-{device}-names.csv"}
            r = timed_run(proc, source, max_frames=max_frames, progress=progress, **files)
            tracks = r.pop("tracks")
            best = r.pop("best_matches")
            timings[name].append(r)
            if rep > 0:
                if not _same_rows(first_tracks[name], tracks):
                    log.warning("%s on %s: run %d gave other tracks or names than run 1", name, device,
                                rep + 1)
                    res[name]["identical_runs"] = False
                continue
            first_tracks[name] = tracks
            r["identical_runs"] = True
            if truth is not None:
                _score_first_run(r, truth, tracks, best, proc)
            res[name] = r
    return res, timings


def _score_first_run(r: dict, truth: gtio.GroundTruth, tracks: gtio.BoxTable, best: Optional[list], proc) -> None:
    """Add ``accuracy`` (:func:`_accuracy` on the first ``r["frames"]``
    frames) to the run's figures ``r`` and, when the run gave ``best``
    matches, the naming ``threshold_sweep`` over similarity thresholds 0.10
    to 0.80 in steps of 0.025 at the processor's ``min_margin``."""
    r["accuracy"] = _accuracy(_restrict(truth, r["frames"]), tracks)
    if best is not None:
        from .metrics import naming_sweep

        r["threshold_sweep"] = naming_sweep(
            _restrict(truth, r["frames"]), tracks, best, np.round(np.arange(0.10, 0.81, 0.025), 3),
            min_margin=proc.min_margin)


def _report_median_runs(res: Dict[str, dict], timings: Dict[str, list]) -> None:
    """Replace the timing figures in ``res[name]`` by those of the run with
    the median FPS (the upper one of an even count) and add ``fps_runs`` and
    ``cpu_ms_per_frame_runs``, every run in order; run 1's ``accuracy``,
    ``threshold_sweep`` and ``identical_runs`` stay."""
    for name, done in timings.items():
        # (the lists first: res[name] is run 1's dict, which the update overwrites)
        fps_runs = [r["fps"] for r in done]
        cpu_runs = [r["cpu_ms_per_frame"] for r in done]
        median = sorted(done, key=lambda r: r["fps"])[len(done) // 2]
        res[name].update({k: v for k, v in median.items()
                          if k not in ("accuracy", "threshold_sweep", "identical_runs")})
        res[name]["fps_runs"] = fps_runs
        res[name]["cpu_ms_per_frame_runs"] = cpu_runs


def _add_speed_ratios(res: Dict[str, dict]) -> None:
    """Add ``speed_ratio`` (pipeline FPS / baseline FPS) and ``cpu_time_ratio``
    (baseline CPU ms per frame / pipeline's) to a device's results."""
    res["speed_ratio"] = res["pipeline"]["fps"] / max(res["baseline"]["fps"], 1e-9)
    res["cpu_time_ratio"] = res["baseline"]["cpu_ms_per_frame"] / max(res["pipeline"]["cpu_ms_per_frame"],
                                                                      1e-9)


def _same_rows(a: gtio.BoxTable, b: gtio.BoxTable) -> bool:
    """Two runs' rows are the same: frames, ids, boxes (to 0.01 px) and names."""
    return (len(a) == len(b) and np.array_equal(a.frame, b.frame) and np.array_equal(a.ids, b.ids)
            and np.allclose(a.tlwh, b.tlwh, atol=0.01) and list(a.names or []) == list(b.names or []))


def _restrict(truth: gtio.GroundTruth, frames: int) -> gtio.GroundTruth:
    """Ground truth of the first ``frames`` frames only (for ``--max-frames``)."""
    if truth.labelled_frames is not None:
        lf = truth.labelled_frames[truth.labelled_frames <= frames]
        return gtio.GroundTruth(truth.boxes.select(truth.boxes.frame <= frames), truth.identities,
                                truth.frame_rate, frames, truth.cuts, lf)
    return gtio.GroundTruth(truth.boxes.select(truth.boxes.frame <= frames), truth.identities, truth.frame_rate,
                            frames, [c for c in truth.cuts if c <= frames])


def format_bench(result: dict, *, machine: bool = True) -> str:
    """Markdown tables of a :func:`run_bench` result, after the machine they
    were timed on (``machine=False``: without that line)."""
    lines = []
    if machine and result.get("environment"):
        lines += [f"Machine: {format_environment(result['environment'])}", ""]
    for device, res in result["devices"].items():
        modes = [m for m in ("pipeline", "baseline") if m in res]
        lines += [f"### {device}", "", "| | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
        lines.append("| FPS (end to end) | " + " | ".join(f"{res[m]['fps']:.2f}" for m in modes) + " |")
        if any(len(res[m].get("fps_runs", [])) > 1 for m in modes):
            lines.append("| FPS of each run (interleaved; the median run is reported) | "
                         + " | ".join(", ".join(f"{f:.2f}" for f in res[m].get("fps_runs", [])) for m in modes) + " |")
            lines.append("| CPU ms per frame of each run | "
                         + " | ".join(", ".join(f"{c:.1f}" for c in res[m].get("cpu_ms_per_frame_runs", []))
                                      for m in modes) + " |")
        lines.append("| CPU ms per frame (all threads) | "
                     + " | ".join(f"{res[m].get('cpu_ms_per_frame', float('nan')):.1f}" for m in modes) + " |")
        for s in STAGES:
            lines.append(f"| {s} (ms/frame) | " + " | ".join(f"{res[m]['stage_ms'][s]:.1f}" for m in modes) + " |")
        lines.append("| faces embedded | " + " | ".join(str(res[m]["faces_embedded"]) for m in modes) + " |")
        lines.append("| peak RSS (MiB) | " + " | ".join(f"{res[m]['peak_rss_mb']:.0f}" for m in modes) + " |")
        if all("accuracy" in res[m] for m in modes):
            for k, fmt in (("naming_wrong_name_rate", "{:.2%}"), ("naming_naming_precision", "{:.3f}"),
                           ("naming_naming_recall", "{:.3f}"), ("naming_named_after_warmup", "{:.1%}"),
                           ("naming_correct", "{}"), ("naming_wrong_name", "{}"),
                           ("naming_named_non_enrolled", "{}"), ("idf1", "{:.3f}")):
                lines.append(f"| {k.replace('naming_naming_', 'naming ').replace('naming_', '')} | "
                             + " | ".join(fmt.format(res[m]["accuracy"][k]) for m in modes) + " |")
        if "speed_ratio" in res:
            lines += ["", f"speed ratio pipeline / baseline (wall-clock FPS): {res['speed_ratio']:.2f}x"]
            if "cpu_time_ratio" in res:
                lines.append(f"CPU-time ratio baseline / pipeline: {res['cpu_time_ratio']:.2f}x")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ scaling
def random_gallery(names: Sequence[str], real: np.ndarray, size: int, *, seed: int = 0, per_person: int = 5,
                   score_mode: str = "max"):
    """A ``GalleryIndex`` of ``size`` embeddings: the real ``(M, D)`` ones
    (named by ``names``) plus random unit vectors for made-up people
    (``per_person`` each); only real ones when ``size <= M``."""
    from gallery.bench import random_unit_vectors
    from gallery.index import GalleryIndex

    dim = real.shape[1]
    if size <= len(real):
        return GalleryIndex(list(names)[:size], real[:size], score_mode=score_mode)
    extra = size - len(real)
    rng = np.random.default_rng(seed)
    vec = np.empty((size, dim), np.float32)
    vec[: len(real)] = real
    random_unit_vectors(extra, dim, rng, out=vec[len(real):])  # in place: 1M x 512 float32 is 2 GB
    names = list(names) + [f"synthetic_{i // per_person:07d}" for i in range(extra)]
    return GalleryIndex(names, vec, score_mode=score_mode)


def run_scaling(*, photos: Optional[Sequence[Path]], gallery: Path, detector: Path, embedder: Path,
                faces: Sequence[int] = (1, 5, 20, 50), gallery_sizes: Sequence[int] = (10, 10_000, 1_000_000),
                frames: int = 60, work_dir: Path, device: str = "cpu", size=(1280, 720), seed: int = 0,
                config_path: Optional[Path] = None) -> dict:
    """FPS and peak memory as faces per frame and gallery size grow.

    Faces: a ``frames``-frame simulator sequence per count (real sprites from
    ``photos``, people repeated when there are more faces than people), run
    through the pipeline and the baseline. Gallery: the 5-face sequence
    through the pipeline with a gallery padded with random embeddings to
    each size, plus the time of one ``person_scores`` call for 5 queries.
    """
    from . import synth
    from .sprites import yolo_detect_fn

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    config = load_settings(config_path)
    photos = list(photos) if photos else [Path(gallery).parent / "probe", Path(gallery)]
    people = synth.people_from_folders(photos, yolo_detect_fn(detector), gallery_dir=gallery)
    parts = build_parts(detector, embedder, gallery, device=device, config=config, work_dir=work_dir)
    out = {"device": device, "frames": frames, "environment": environment(), "faces": [], "gallery": []}
    videos = {}
    for n in sorted(set(faces) | {5}):
        seq = work_dir / f"faces{n:03d}"
        sc = synth.plan_sequence(people, seed=seed, num_frames=frames, width=size[0], height=size[1],
                                 faces_per_frame=n, shot_frames=(frames, frames), min_face=24)
        synth.write_sequence(seq, sc, people)
        videos[n] = seq / "video.mp4"
    for n in faces:
        truth = gtio.load_ground_truth(videos[n].parent)
        row = {"faces_per_frame": n, "mean_gt_boxes_per_frame": len(truth.boxes) / frames}
        for name, proc in (("pipeline", make_pipeline(parts)), ("baseline", make_baseline(parts))):
            r = timed_run(proc, videos[n])
            row[name] = {k: r[k] for k in ("fps", "cpu_ms_per_frame", "peak_rss_mb", "stage_ms", "faces_embedded")}
        out["faces"].append(row)
        log.info("scaling faces=%d: %s", n, {k: row[k]["fps"] for k in ("pipeline", "baseline")})
    for m in gallery_sizes:
        index = random_gallery(parts.gallery_names, parts.gallery_vectors, m, seed=seed,
                               score_mode=parts.index.score_mode)
        q = np.random.default_rng(1).standard_normal((5, index.dim)).astype(np.float32)
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            index.person_scores(q)
        query_ms = 1000 * (time.perf_counter() - t0) / reps
        r = timed_run(make_pipeline(parts, index=index), videos[5])
        out["gallery"].append({"embeddings": len(index), "people": len(index.people), "score_mode": index.score_mode,
                               "query_ms_5_faces": query_ms,
                               "fps": r["fps"], "cpu_ms_per_frame": r["cpu_ms_per_frame"],
                               "peak_rss_mb": r["peak_rss_mb"],
                               "identify_ms": r["stage_ms"]["identify"]})
        log.info("scaling gallery=%d: %.2f fps", m, r["fps"])
        del index
    return out


# ------------------------------------------------------------------ the limit
def floor_run(detector, video: Path, *, every: int = 1, max_frames: Optional[int] = None,
              input_size_for=None) -> dict:
    """Decode ``video`` and run ``detector`` on one frame in ``every``: the floor of any pipeline around it.

    The frames are read as the pipeline reads them (``pipeline.sources.open_source``,
    decoded one step ahead in a thread) and ``detector.detect`` sees each
    whole frame, at the input the pipeline gives it: ``input_size_for(height,
    width)`` (:meth:`pipeline.runner.Pipeline.full_frame_input_size`), or the
    detector's own without it.

    Returns
    -------
    dict
        ``every``, ``frames``, ``seconds``, ``fps`` (frames per wall-clock
        second), ``cpu_ms_per_frame`` (CPU time of this process, all threads:
        less sensitive than FPS to other programs on the machine),
        ``detect_calls`` and ``detect_ms`` (mean per call).
    """
    from pipeline.detect_at import detect_at
    from pipeline.sources import open_source

    if int(every) != every or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")
    source = open_source(str(video))
    frames, calls, detect_s = 0, 0, 0.0
    start, cpu0 = time.perf_counter(), time.process_time()
    try:
        while max_frames is None or frames < max_frames:
            frame = source.read()
            if frame is None:
                break
            if frames % every == 0:
                t0 = time.perf_counter()
                detect_at(detector, frame.image,
                          None if input_size_for is None else input_size_for(*frame.image.shape[:2]))
                detect_s += time.perf_counter() - t0
                calls += 1
            frames += 1
    finally:
        source.close()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return {"every": int(every), "frames": frames, "seconds": seconds, "fps": frames / max(seconds, 1e-9),
            "cpu_ms_per_frame": 1000.0 * cpu / max(frames, 1),
            "detect_calls": calls, "detect_ms": 1000.0 * detect_s / max(calls, 1)}


def run_limit(video: Path, parts: Parts, *, every: Sequence[int] = (1,), max_frames: Optional[int] = 300,
              repeats: int = 1) -> dict:
    """The pipeline's FPS as a fraction of the detector floor, and where its time goes.

    Runs, interleaved ``repeats`` times: :func:`floor_run` at each of
    ``every`` (and at the pipeline's ``detect_interval``), and the pipeline
    through :func:`timed_run` (overlay and mp4 sink included); each figure is
    the median run's.

    Returns
    -------
    dict
        ``video``, ``width``, ``height``, ``frames``, ``input_size``,
        ``detect_interval``, ``floors`` (``{every: floor_run figures}``),
        ``pipeline`` (fps, fps_runs, stage_ms over :data:`LIMIT_STAGES`,
        detection_frames, faces_embedded, cpu_ms_per_frame),
        ``fraction_of_floor`` (``{every: pipeline fps / floor fps}``),
        ``cpu_fraction_of_floor`` (``{every: floor CPU ms / pipeline CPU ms
        per frame}``) and ``stage_share`` (each stage's share of the
        pipeline's wall-clock time per frame).
    """
    repeats = _check_repeats(repeats)
    pipeline = make_pipeline(parts)
    interval = int(pipeline.schedule.detect_interval)
    ks = sorted(set(int(k) for k in every) | {interval})
    floors: Dict[int, list] = {k: [] for k in ks}
    runs: list = []
    for _ in range(repeats):
        for k in ks:
            floors[k].append(floor_run(parts.detector, video, every=k, max_frames=max_frames,
                                       input_size_for=pipeline.full_frame_input_size))
        r = timed_run(pipeline, video, max_frames=max_frames)
        r.pop("tracks"), r.pop("best_matches")
        runs.append(r)
    return _limit_figures(video, pipeline, interval, floors, runs)


def _median_run(runs: list, key: str = "fps") -> dict:
    """The run with the median ``key`` (the upper one of an even count), with ``<key>_runs`` added."""
    out = dict(sorted(runs, key=lambda r: r[key])[len(runs) // 2])
    out[f"{key}_runs"] = [r[key] for r in runs]
    return out


def _limit_figures(video: Path, pipe, interval: int, floors: Dict[int, list], runs: list) -> dict:
    import cv2

    cap = cv2.VideoCapture(str(video))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    run = _median_run(runs)
    floor = {k: _median_run(v) for k, v in floors.items()}
    frame_ms = 1000.0 / max(run["fps"], 1e-9)
    pipeline = {k: run[k] for k in ("fps", "fps_runs", "frames", "stage_ms", "detection_frames", "faces_embedded",
                                    "cpu_ms_per_frame")}
    return {"video": str(video), "width": width, "height": height, "frames": run["frames"],
            "input_size": pipe.full_frame_input_size(height, width), "detect_interval": interval,
            "environment": environment(), "floors": floor, "pipeline": pipeline,
            "fraction_of_floor": {k: run["fps"] / max(f["fps"], 1e-9) for k, f in floor.items()},
            "cpu_fraction_of_floor": {k: f["cpu_ms_per_frame"] / max(run["cpu_ms_per_frame"], 1e-9)
                                      for k, f in floor.items()},
            "stage_share": {s: run["stage_ms"][s] / frame_ms for s in LIMIT_STAGES}}


def format_limit(result: dict) -> str:
    """A Markdown block of one :func:`run_limit` result."""
    p = result["pipeline"]
    lines = [f"#### {Path(result['video']).name} ({result['width']}x{result['height']}, {result['frames']} frames, "
             f"detector input {result['input_size']}, pipeline detect_interval {result['detect_interval']})", "",
             "| run | FPS | FPS of each run | CPU ms per frame | detector calls | ms per detector call "
             "| pipeline FPS / this | this CPU ms / pipeline's |", "|---|---|---|---|---|---|---|---|"]
    for k, f in result["floors"].items():
        lines.append(f"| floor: decode + detect every {k} frame{'s' if int(k) > 1 else ''} | {f['fps']:.2f} | "
                     + ", ".join(f"{v:.2f}" for v in f["fps_runs"])
                     + f" | {f['cpu_ms_per_frame']:.1f} | {f['detect_calls']} | {f['detect_ms']:.1f} | "
                     f"{result['fraction_of_floor'][k]:.2f} | {result['cpu_fraction_of_floor'][k]:.2f} |")
    lines.append(f"| pipeline (default settings, overlay, mp4 sink) | {p['fps']:.2f} | "
                 + ", ".join(f"{v:.2f}" for v in p["fps_runs"]) + f" | {p['cpu_ms_per_frame']:.1f} | "
                 f"{p['detection_frames']} | "
                 f"{p['stage_ms']['detect'] * p['frames'] / max(p['detection_frames'], 1):.1f} | 1.00 | 1.00 |")
    lines += ["", "| stage | " + " | ".join(LIMIT_STAGES) + " |", "|---|" + "---|" * len(LIMIT_STAGES),
              "| ms per frame | " + " | ".join(f"{p['stage_ms'][s]:.1f}" for s in LIMIT_STAGES) + " |",
              "| share of the frame time | " + " | ".join(f"{result['stage_share'][s]:.0%}" for s in LIMIT_STAGES)
              + " |", ""]
    return "\n".join(lines)
