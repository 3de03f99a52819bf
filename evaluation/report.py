"""``python -m evaluation report --out DIR``: run every measurement and write
``DIR/report.md`` with tables and PNG plots.

Steps (each result is kept as JSON in ``DIR`` so ``--reuse`` can skip it):

1. ``synth/``: the simulator sequence (``--frames``, 1280x720, seed ``--seed``).
2. ``bench.json``: the pipeline and the naive baseline on it, per device,
   per stage, with naming accuracy and the baseline's accuracy-versus-threshold sweep.
3. ``score.json``: every tracking and naming metric of the pipeline's run.
4. ``scaling.json``: FPS and memory versus faces per frame and gallery size.
5. ``calibration.txt`` / ``calibration.png``: ``python -m gallery calibrate``
   on ``data/verification_pairs.csv`` (the gallery's own command, reused).
6. the plots and ``report.md``.

Every number in ``report.md`` comes from these files.
"""
from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

#: The issue's targets: (label, key, comparison, value).
TARGETS = (
    ("IDF1", "idf1", ">=", 0.95),
    ("ID switches per 1000 gt boxes", "id_switches_per_1000_gt", "<=", 1.0),
    ("wrong names, % of named boxes", "wrong_name_pct", "<=", 0.5),
    ("enrolled correctly named after 1 s, %", "named_after_warmup_pct", ">=", 90.0),
    ("speed, pipeline / naive baseline (wall-clock FPS)", "speed_ratio", ">=", 2.0),
    ("speed, pipeline / naive baseline (CPU time per frame)", "cpu_time_ratio", ">=", 2.0),
)


def _json_default(o):
    """JSON for numpy scalars (as Python numbers) and paths (as strings); ``TypeError`` otherwise."""
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def _save(path: Path, data) -> None:
    """Write ``data`` as indented JSON with sorted keys."""
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=_json_default) + "\n")


def _cached(path: Path, reuse: bool, make):
    """``make()``'s result saved to ``path`` and read back (so it is what a
    later ``reuse`` reads); with ``reuse`` and ``path`` present, only read."""
    if reuse and path.exists():
        log.info("reusing %s", path)
        return json.loads(path.read_text())
    data = make()
    _save(path, data)
    return json.loads(path.read_text())


def _fmt(x, spec=".3f") -> str:
    """``x`` formatted with ``spec``; ``"n/a"`` for None and NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return format(x, spec)


@dataclass(frozen=True)
class _SharedInputs:
    """Where the report's models and data lie under the shared folder."""

    shared: Path
    detector: Path
    embedder: Path
    gallery: Path
    photos: List[Path]
    pairs: Path

    @classmethod
    def under(cls, shared: Path) -> "_SharedInputs":
        """``models/yolov8n-face.pt``, ``models/edgeface_xs.onnx``,
        ``data/gallery``, photos ``data/probe`` then the gallery, and
        ``data/verification_pairs.csv`` under ``shared``."""
        gallery = shared / "data" / "gallery"
        return cls(shared, shared / "models" / "yolov8n-face.pt", shared / "models" / "edgeface_xs.onnx", gallery,
                   [shared / "data" / "probe", gallery], shared / "data" / "verification_pairs.csv")


def build_report(out: Path, *, shared: Path, frames: int = 2000, seed: int = 0, quick: bool = False,
                 reuse: bool = False, config_path: Optional[Path] = None,
                 validation_seeds: Sequence[int] = (), repeats: int = 3) -> Path:
    """Run everything and write ``out/report.md``; returns its path.

    ``validation_seeds``: more simulator sequences (same size and length),
    each run through the pipeline and the baseline on the CPU for the
    accuracy table only (their timings are not reported).
    ``repeats``: timed runs of each on the main sequence, interleaved (see
    :func:`evaluation.bench.run_bench`); 1 with ``quick``.
    """
    from . import bench
    from . import gt as gtio

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = _SharedInputs.under(Path(shared))
    size = (960, 540) if quick else (1280, 720)
    frames = min(frames, 300) if quick else frames
    repeats = 1 if quick else int(repeats)
    seq = out / "synth"
    commands = [_report_command(out, frames, seed, quick, validation_seeds, repeats)]

    # 1. the sequence
    make_sequence = _SequenceMaker(inputs, frames=frames, size=size, quick=quick, reuse=reuse)
    make_sequence(seq, seed)
    truth = gtio.load_ground_truth(seq)
    synth_info = json.loads((seq / "synth.json").read_text())
    commands.append(f"python -m evaluation synth --photos {inputs.photos[0]} --photos {inputs.photos[1]} "
                    f"--gallery {inputs.gallery} --out {seq} --seed {seed} --frames {frames} "
                    f"--size {size[0]}x{size[1]}")

    # 2. bench (writes the tracks and per-frame names of each run under out/bench)
    bench_res = _cached(out / "bench.json", reuse, lambda: bench.run_bench(
        seq / "video.mp4", inputs.gallery, gt_dir=seq, detector=inputs.detector, embedder=inputs.embedder,
        progress=True, out_dir=out / "bench", config_path=config_path, repeats=repeats))
    commands.append(f"python -m evaluation bench --source {seq / 'video.mp4'} --gallery {inputs.gallery} "
                    f"--out {out / 'bench'} --repeats {repeats} --json")

    # 3.-7. the full score, scaling, verification pairs, validation seeds, the hand-labelled clip
    score, lines = _score_pipeline_run(out, seq, truth, reuse)
    commands += lines
    scaling, lines = _scaling_step(out, inputs, quick=quick, reuse=reuse, config_path=config_path)
    commands += lines
    cal_txt, lines = _calibration_step(out, inputs, reuse=reuse)
    commands += lines
    validation, lines = _validation_step(out, inputs, validation_seeds, make_sequence, reuse=reuse,
                                         config_path=config_path)
    commands += lines
    real, by_height, lines = _real_clip_and_height_steps(out, inputs, quick=quick, reuse=reuse, config_path=config_path)
    commands += lines

    # 8. plots and markdown
    plots = make_plots(out, bench_res, scaling)
    md = render_markdown(truth, synth_info, bench_res, score, scaling,
                         cal_txt.read_text() if cal_txt.exists() else None, plots, commands, quick=quick,
                         validation=[(seed, bench_res)] + validation if validation else None, real=real,
                         by_height=by_height)
    (out / "report.md").write_text(md)
    return out / "report.md"


def _report_command(out: Path, frames: int, seed: int, quick: bool, validation_seeds: Sequence[int],
                    repeats: int) -> str:
    """The ``python -m evaluation report`` line that reproduces the whole report."""
    return (f"python -m evaluation report --out {out} --frames {frames} --seed {seed}"
            + (" --quick" if quick else "")
            + (f" --validation-seeds {' '.join(map(str, validation_seeds))}" if validation_seeds else "")
            + (f" --repeats {repeats}" if not quick else "")
            + "   # all of the below")


class _SequenceMaker:
    """Writes simulator sequences of one size and length; the people (sprites
    cut with the detector) are loaded on the first sequence actually
    written and kept for the next ones.

    Parameters
    ----------
    inputs : _SharedInputs
        Photos, gallery and detector.
    frames : int
        Sequence length.
    size : (int, int)
        Width and height.
    quick : bool
        Shots of 60 to 120 frames instead of the simulator's default.
    reuse : bool
        Leave a folder that already has ground truth as it is.
    """

    def __init__(self, inputs: _SharedInputs, *, frames: int, size: Tuple[int, int], quick: bool,
                 reuse: bool) -> None:
        self.inputs = inputs
        self.frames = frames
        self.size = size
        self.quick = quick
        self.reuse = reuse
        self.people: list = []

    def __call__(self, folder: Path, seq_seed: int) -> None:
        """Write the sequence of seed ``seq_seed`` to ``folder`` (see :func:`evaluation.synth.write_sequence`)."""
        from . import gt as gtio
        from . import synth
        from .sprites import yolo_detect_fn

        if self.reuse and (folder / gtio.GT_FILE).exists():
            return
        inputs = self.inputs
        if not self.people:
            self.people.extend(synth.people_from_folders(inputs.photos, yolo_detect_fn(inputs.detector),
                                                         gallery_dir=inputs.gallery))
        shots = dict(shot_frames=(60, 120)) if self.quick else {}
        sc = synth.plan_sequence(self.people, seed=seq_seed, num_frames=self.frames, width=self.size[0],
                                 height=self.size[1], **shots)
        synth.write_sequence(folder, sc, self.people, progress=True,
                             extra_info={"photos": [str(p) for p in inputs.photos]})


def _score_pipeline_run(out: Path, seq: Path, truth, reuse: bool) -> Tuple[dict, List[str]]:
    """Every metric (:func:`evaluation.metrics.score`) of the pipeline's CPU
    bench run, read from ``out/bench``; cached in ``out/score.json``.

    Returns the score and the command line that reproduces it.
    """
    from . import gt as gtio
    from . import metrics

    tracks_path = out / "bench" / "pipeline-cpu-tracks.txt"
    names_path = out / "bench" / "pipeline-cpu-names.csv"

    def make_score():
        # (bench folders written before the names file held the names in an 11th column)
        tracks = gtio.attach_names(gtio.read_mot(tracks_path),
                                   names_file=names_path if names_path.exists() else None)
        return metrics.score(truth, tracks)

    score = _cached(out / "score.json", reuse, make_score)
    return score, [f"python -m evaluation score --tracks {tracks_path} --names {names_path} --gt {seq}"]


def _scaling_step(out: Path, inputs: _SharedInputs, *, quick: bool, reuse: bool,
                  config_path: Optional[Path]) -> Tuple[dict, List[str]]:
    """FPS and memory versus faces per frame and gallery size
    (:func:`evaluation.bench.run_scaling`, smaller with ``quick``); cached in
    ``out/scaling.json``. Returns the result and its command line."""
    from . import bench

    faces = (1, 5) if quick else (1, 5, 20, 50)
    sizes = (10, 10_000) if quick else (10, 10_000, 1_000_000)
    scale_frames = 20 if quick else 150
    scaling = _cached(out / "scaling.json", reuse, lambda: bench.run_scaling(
        photos=inputs.photos, gallery=inputs.gallery, detector=inputs.detector, embedder=inputs.embedder,
        faces=faces, gallery_sizes=sizes, frames=scale_frames, work_dir=out / "scaling", config_path=config_path))
    return scaling, [f"python -m evaluation scaling --out {out / 'scaling'} --frames {scale_frames} "
                     f"--faces {' '.join(map(str, faces))} --gallery-sizes {' '.join(map(str, sizes))}"]


def _calibration_step(out: Path, inputs: _SharedInputs, *, reuse: bool) -> Tuple[Path, List[str]]:
    """Run ``python -m gallery calibrate`` on the verification pairs (when
    they exist and ``out/calibration.txt`` is not reused) and keep its output,
    or the failure, in ``out/calibration.txt``; it draws
    ``out/calibration.png``. Returns that text file's path (it may not
    exist) and the command line."""
    cal_txt = out / "calibration.txt"
    pairs = inputs.pairs
    cal_cmd = [sys.executable, "-m", "gallery", "calibrate", str(pairs), "--plot", str(out / "calibration.png"),
               "--quiet", "--detector", str(inputs.detector), "--embedder", str(inputs.embedder), "--device", "cpu"]
    models_dir = ["--models-dir", str(inputs.shared / "models")]
    if not (reuse and cal_txt.exists()) and pairs.exists():
        proc = subprocess.run(cal_cmd + models_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            log.warning("gallery calibrate failed: %s", proc.stderr[-2000:])
            cal_txt.write_text(f"(gallery calibrate failed with exit status {proc.returncode})\n{proc.stderr[-2000:]}")
        else:
            cal_txt.write_text(proc.stdout)
    return cal_txt, [" ".join(["python"] + cal_cmd[1:] + models_dir)]


def _validation_step(out: Path, inputs: _SharedInputs, validation_seeds: Sequence[int], make_sequence, *,
                     reuse: bool, config_path: Optional[Path]) -> Tuple[list, List[str]]:
    """For each seed, a sequence in ``out/validation-seed<N>/synth`` and a
    CPU bench on it (cached in that folder's ``bench.json``).

    Returns ``[(seed, run_bench result), ...]`` in seed order and the
    command lines (none without seeds).
    """
    from . import bench

    validation = []
    for extra in validation_seeds:
        folder = out / f"validation-seed{extra}"
        make_sequence(folder / "synth", extra)
        res = _cached(folder / "bench.json", reuse, lambda: bench.run_bench(
            folder / "synth" / "video.mp4", inputs.gallery, gt_dir=folder / "synth", detector=inputs.detector,
            embedder=inputs.embedder, devices=["cpu"], progress=True, out_dir=folder / "bench",
            config_path=config_path))
        validation.append((extra, res))
    if not validation_seeds:
        return validation, []
    return validation, [f"# --validation-seeds: for each N, synth --seed N --out {out}/validation-seedN/synth, "
                        f"then bench --source {out}/validation-seedN/synth/video.mp4 --json"]


def _labelled_clip_step(out: Path, inputs: _SharedInputs, *, quick: bool, reuse: bool,
                        config_path: Optional[Path]) -> Tuple[Optional[dict], List[str]]:
    """The real clip scored against its hand labels (:func:`score_labelled_clip`,
    cached in ``out/hamilton.json``), unless ``quick`` or the clip or its
    labels are missing (then None and no command lines)."""
    labels = LABELS_DIR / "short_hamilton_clip.csv"
    clip = inputs.shared / "data" / "video" / "short_hamilton_clip.mp4"
    if not (labels.exists() and clip.exists() and not quick):
        return None, []
    real = _cached(out / "hamilton.json", reuse, lambda: score_labelled_clip(
        clip, labels, inputs.gallery, detector=inputs.detector, embedder=inputs.embedder, work_dir=out / "hamilton",
        config_path=config_path))
    hamilton = out / "hamilton"
    return real, [f"python demo.py --source {clip} --gallery {inputs.gallery} --no-show "
                  f"--tracks {hamilton / 'tracks.txt'} --names {hamilton / 'names.csv'}",
                  f"python -m evaluation score --tracks {hamilton / 'tracks.txt'} "
                  f"--names {hamilton / 'names.csv'} --gt {labels} --gallery {inputs.gallery}"]


def _real_clip_and_height_steps(out: Path, inputs: _SharedInputs, **kw):
    """:func:`_labelled_clip_step` then :func:`_by_height_step`: the Hamilton
    clip's result, the naming-by-height rows, and both steps' command lines."""
    real, lines = _labelled_clip_step(out, inputs, **kw)
    by_height, more = _by_height_step(out, inputs, real=real, **kw)
    return real, by_height, lines + more


#: Frames of the report's broadcast-preset sequence (1280x720; 300 with ``quick``, at 960x540).
BROADCAST_REPORT_FRAMES = 900


def _by_height_step(out: Path, inputs: _SharedInputs, *, quick: bool, reuse: bool, config_path: Optional[Path],
                    real: Optional[dict]) -> Tuple[List[Tuple[str, dict]], List[str]]:
    """Naming by face height (:func:`evaluation.metrics.naming_by_height`)
    on a broadcast-preset sequence (``out/broadcast``, cached in
    ``out/broadcast.json``) and on every labelled real clip of
    :func:`labelled_clips` (the Hamilton clip's run is ``real``; the others
    are cached in ``out/labels-<name>.json``; none with ``quick``).

    Returns ``[(title, score), ...]`` and the command lines."""
    from .broadcast import DEFAULT_CROWD_PHOTOS

    seq = out / "broadcast"
    frames, size = (300, (960, 540)) if quick else (BROADCAST_REPORT_FRAMES, (1280, 720))
    score = _cached(out / "broadcast.json", reuse, lambda: score_broadcast_sequence(
        seq, inputs, frames=frames, size=size, config_path=config_path))
    rows = [(f"broadcast preset, seed 0, {frames} frames {size[0]}x{size[1]}, H.264", score)]
    crowd = " ".join(f"--crowd {inputs.shared / 'data' / c}" for c in DEFAULT_CROWD_PHOTOS)
    lines = [f"python -m evaluation synth --preset broadcast --photos {inputs.photos[0]} --photos {inputs.photos[1]} "
             f"--gallery {inputs.gallery} {crowd} --out {seq / 'synth'} --seed 0 --frames {frames} "
             f"--size {size[0]}x{size[1]}",
             f"python demo.py --source {seq / 'synth' / 'video.mp4'} --gallery {inputs.gallery} --no-show "
             f"--tracks {seq / 'tracks.txt'} --names {seq / 'names.csv'}",
             f"python -m evaluation score --tracks {seq / 'tracks.txt'} --names {seq / 'names.csv'} "
             f"--gt {seq / 'synth'}"]
    for name, labels, clip in ([] if quick else labelled_clips(inputs.shared)):
        if name == "short_hamilton_clip" and real is not None:
            res = real
        else:
            res = _cached(out / f"labels-{name}.json", reuse, lambda: score_labelled_clip(
                clip, labels, inputs.gallery, detector=inputs.detector, embedder=inputs.embedder,
                work_dir=out / f"labels-{name}", config_path=config_path))
            lines.append(f"python -m evaluation score --tracks {out / f'labels-{name}' / 'tracks.txt'} --names "
                         f"{out / f'labels-{name}' / 'names.csv'} --gt {labels} --gallery {inputs.gallery}")
        rows.append((f"`{name}` ({res['labelled_frames']} hand-labelled frames)", res["score"]))
    return rows, lines


def labelled_clips(shared: Path) -> List[Tuple[str, Path, Path]]:
    """``(name, labels CSV, video)`` of every ``evaluation/labels/<name>.csv``
    whose video ``shared/data/video/<name>.mp4`` exists (enrolled against
    ``shared/data/gallery``)."""
    out = []
    for labels in sorted(LABELS_DIR.glob("*.csv")):
        clip = Path(shared) / "data" / "video" / f"{labels.stem}.mp4"
        if clip.exists():
            out.append((labels.stem, labels, clip))
    return out


def score_broadcast_sequence(folder: Path, inputs: _SharedInputs, *, frames: int, size: Tuple[int, int],
                             seed: int = 0, config_path: Optional[Path] = None) -> dict:
    """Render a broadcast-preset sequence into ``folder/synth`` (H.264), run
    the pipeline (CPU) with ``folder/tracks.txt`` and ``names.csv``, and
    return :func:`evaluation.metrics.score` of it."""
    from . import bench, broadcast, metrics, synth
    from .sprites import yolo_detect_fn

    folder = Path(folder)
    detect = yolo_detect_fn(inputs.detector)
    people = synth.people_from_folders(inputs.photos, detect, gallery_dir=inputs.gallery)
    crowd = [inputs.shared / "data" / c for c in broadcast.DEFAULT_CROWD_PHOTOS]
    people += broadcast.crowd_people([c for c in crowd if c.exists()], detect)
    scenario = synth.plan_sequence(people, preset="broadcast", seed=seed, num_frames=frames, width=size[0],
                                   height=size[1])
    truth = synth.write_sequence(folder / "synth", scenario, people, codec="h264", progress=True,
                                 extra_info={"preset": "broadcast"})
    parts = bench.build_parts(inputs.detector, inputs.embedder, inputs.gallery, device="cpu",
                              config=bench.load_settings(config_path), work_dir=folder)
    run = bench.timed_run(bench.make_pipeline(parts), folder / "synth" / "video.mp4",
                          tracks_path=folder / "tracks.txt", names_path=folder / "names.csv")
    return metrics.score(truth, run["tracks"])


def _md_by_height(rows: List[Tuple[str, dict]]) -> List[str]:
    """Markdown lines: one naming-by-height table per scored sequence."""
    from . import metrics

    L = ["## Naming by face height", "",
         "Gt boxes of enrolled people, by the height of the gt box in frame pixels: the share of them in each "
         "bin, and what was shown on them (`evaluation.metrics.naming_by_height`; the four columns from "
         "right name to wrong name add up to 100 %). The broadcast preset draws 14-40 px faces, 4-8 people "
         "a shot, H.264 (`evaluation/broadcast.py`).", ""]
    for title, score in rows:
        if score.get("naming_by_height"):
            L += [f"{title}:", "", metrics.format_height_table(score["naming_by_height"]), ""]
    return L


def targets(score: dict, bench_res: dict) -> list:
    """``(label, measured, target text, met)`` rows for the issue's targets (CPU run)."""
    cpu = bench_res["devices"].get("cpu", {})
    n = score["naming"]
    values = {
        "idf1": score["idf1"],
        "id_switches_per_1000_gt": score["id_switches_per_1000_gt"],
        "wrong_name_pct": 100 * n["wrong_name_rate"],
        "named_after_warmup_pct": 100 * n["named_after_warmup"],
        "speed_ratio": cpu.get("speed_ratio", float("nan")),
        "cpu_time_ratio": cpu.get("cpu_time_ratio", float("nan")),
    }
    rows = []
    for label, key, op, goal in TARGETS:
        v = values[key]
        met = (v >= goal) if op == ">=" else (v <= goal)
        rows.append((label, v, f"{op} {goal:g}", bool(met) if v == v else False))
    if "baseline" in cpu and "accuracy" in cpu.get("baseline", {}):
        p, b = cpu["pipeline"]["accuracy"], cpu["baseline"]["accuracy"]
        as_good = (p["naming_wrong_name_rate"] <= b["naming_wrong_name_rate"] + 1e-12
                   and p["naming_named_after_warmup"] >= b["naming_named_after_warmup"])
        rows.append(("naming at least as good as the baseline (wrong-name rate <= and named-after-1s >=)",
                     f"{100 * p['naming_wrong_name_rate']:.2f} % vs {100 * b['naming_wrong_name_rate']:.2f} %; "
                     f"{100 * p['naming_named_after_warmup']:.1f} % vs {100 * b['naming_named_after_warmup']:.1f} %",
                     "both", as_good))
    return rows


def make_plots(out: Path, bench_res: dict, scaling: dict) -> dict:
    """Write the report's PNG plots into ``out``; returns ``{name: file name}``.

    ``threshold`` (accuracy versus threshold) only when the CPU run (else the
    first device) has a baseline ``threshold_sweep``; ``stages`` always;
    ``faces`` and ``gallery`` only when ``scaling`` has those rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}

    def save(fig, key: str, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        plots[key] = name

    cpu = bench_res["devices"].get("cpu") or next(iter(bench_res["devices"].values()))
    sweep = cpu.get("baseline", {}).get("threshold_sweep")
    if sweep:
        thr = bench_res.get("config", {}).get("identifier", {}).get("similarity_threshold")
        save(_plot_threshold_sweep(plt, sweep, thr), "threshold", "accuracy_vs_threshold.png")
    save(_plot_stages(plt, bench_res), "stages", "stages.png")
    if scaling.get("faces"):
        save(_plot_scaling_faces(plt, scaling["faces"]), "faces", "scaling_faces.png")
    if scaling.get("gallery"):
        save(_plot_scaling_gallery(plt, scaling["gallery"]), "gallery", "scaling_gallery.png")
    return plots


def _plot_threshold_sweep(plt, sweep: list, threshold: Optional[float]):
    """A figure of the naive baseline's wrong-name rate, naming recall and
    named-after-warmup (in %) against the similarity threshold of each
    ``sweep`` row (:func:`evaluation.metrics.naming_sweep`), with the
    configured ``threshold`` marked when given."""
    t = [r["threshold"] for r in sweep]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, [100 * r["wrong_name_rate"] if r["wrong_name_rate"] == r["wrong_name_rate"] else float("nan")
                for r in sweep], label="wrong names, % of named boxes")
    ax.plot(t, [100 * r["naming_recall"] for r in sweep], label="enrolled matched boxes named correctly, %")
    ax.plot(t, [100 * r["named_after_warmup"] for r in sweep], label="enrolled gt boxes named after 1 s, %")
    if threshold is not None:
        ax.axvline(threshold, color="grey", ls="--", label=f"configured threshold {threshold}")
    ax.set_xlabel("cosine similarity threshold (per-face naming, naive baseline)")
    ax.set_ylabel("%")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _plot_stages(plt, bench_res: dict):
    """A figure of stacked horizontal bars: ms per frame per stage
    (:data:`evaluation.bench.STAGES`), one bar per device and mode."""
    from .bench import STAGES

    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels, bottoms = [], []
    for device, res in bench_res["devices"].items():
        for mode in ("pipeline", "baseline"):
            if mode in res:
                labels.append(f"{mode}\n{device}")
                bottoms.append(res[mode]["stage_ms"])
    left = [0.0] * len(labels)
    for s in STAGES:
        vals = [b[s] for b in bottoms]
        ax.barh(labels, vals, left=left, label=s)
        left = [a + v for a, v in zip(left, vals)]
    ax.set_xlabel("ms per frame")
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    return fig


def _plot_scaling_faces(plt, rows: list):
    """A figure of two panels, FPS and peak RSS of the pipeline and the
    baseline against faces per frame (``run_scaling``'s ``faces`` rows)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    x = [r["faces_per_frame"] for r in rows]
    for mode in ("pipeline", "baseline"):
        a1.plot(x, [r[mode]["fps"] for r in rows], "o-", label=mode)
        a2.plot(x, [r[mode]["peak_rss_mb"] for r in rows], "o-", label=mode)
    a1.set_xlabel("faces per frame (cast size)")
    a1.set_ylabel("FPS")
    a2.set_xlabel("faces per frame (cast size)")
    a2.set_ylabel("peak RSS (MiB)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
    return fig


def _plot_scaling_gallery(plt, rows: list):
    """A figure of two panels against the gallery size (log scale): the
    pipeline's FPS with the query time of 5 faces, and peak RSS
    (``run_scaling``'s ``gallery`` rows)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    x = [r["embeddings"] for r in rows]
    a1.semilogx(x, [r["fps"] for r in rows], "o-", label="pipeline FPS")
    a1b = a1.twinx()
    a1b.semilogx(x, [r["query_ms_5_faces"] for r in rows], "s--", color="C1",
                 label="query ms (5 faces)")
    a1.set_xlabel("gallery embeddings")
    a1.set_ylabel("FPS")
    a1b.set_ylabel("ms per query of 5 faces")
    a2.semilogx(x, [r["peak_rss_mb"] for r in rows], "o-")
    a2.set_xlabel("gallery embeddings")
    a2.set_ylabel("peak RSS (MiB)")
    a1.grid(alpha=0.3)
    a2.grid(alpha=0.3)
    return fig


#: Hand-labelled real clips (``frame,x,y,w,h,name``; see the README there).
LABELS_DIR = Path(__file__).resolve().parent / "labels"


def score_labelled_clip(clip: Path, labels: Path, gallery: Path, *, detector: Path, embedder: Path, work_dir: Path,
                        config_path: Optional[Path] = None) -> dict:
    """Run the pipeline (default settings, CPU) over ``clip`` and score it on the hand-labelled frames."""
    from . import bench, metrics
    from . import gt as gtio

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    config = bench.load_settings(config_path)
    parts = bench.build_parts(detector, embedder, gallery, device="cpu", config=config, work_dir=work_dir)
    run = bench.timed_run(bench.make_pipeline(parts), clip, tracks_path=work_dir / "tracks.txt",
                          names_path=work_dir / "names.csv")
    truth = gtio.read_sparse_labels(labels, gallery_dir=gallery)
    return {"clip": str(clip), "labels": str(labels), "labelled_frames": len(truth.labelled_frames),
            "score": metrics.score(truth, run["tracks"])}


def validation_table(runs) -> list:
    """Markdown lines: accuracy of the pipeline and the baseline per simulator seed, and pooled."""
    L = ["| seed | gt boxes | IDF1 | ID switches (per 1000) | wrong names | named after 1 s: pipeline | "
         "named after 1 s: baseline |", "|---|---|---|---|---|---|---|"]
    tot = dict(gt=0, sw=0, wrong=0, named=0)
    after_p, after_b = [], []
    for seq_seed, res in runs:
        cpu = res["devices"].get("cpu", {})
        p, b = cpu.get("pipeline", {}).get("accuracy"), cpu.get("baseline", {}).get("accuracy")
        if not p or not b:
            continue
        tot["gt"] += p["gt_boxes"]
        tot["sw"] += p["id_switches"]
        tot["wrong"] += p["naming_wrong_name"] + p["naming_named_non_enrolled"]
        tot["named"] += p["naming_named_boxes"]
        after_p.append(p["naming_named_after_warmup"])
        after_b.append(b["naming_named_after_warmup"])
        L.append(f"| {seq_seed} | {p['gt_boxes']} | {p['idf1']:.3f} | {p['id_switches']} "
                 f"({p['id_switches_per_1000_gt']:.2f}) | {100 * p['naming_wrong_name_rate']:.2f} % | "
                 f"{100 * p['naming_named_after_warmup']:.1f} % | {100 * b['naming_named_after_warmup']:.1f} % |")
    if after_p:
        L.append(f"| all (pooled boxes; mean of the seeds' naming) | {tot['gt']} | | {tot['sw']} "
                 f"({1000 * tot['sw'] / max(tot['gt'], 1):.2f}) | "
                 f"{100 * tot['wrong'] / max(tot['named'], 1):.2f} % | {100 * sum(after_p) / len(after_p):.1f} % | "
                 f"{100 * sum(after_b) / len(after_b):.1f} % |")
    return L


def render_markdown(truth, synth_info, bench_res, score, scaling, calibration, plots, commands, *,
                    quick=False, validation=None, real=None, by_height=None) -> str:
    """The text of ``report.md``.

    Parameters
    ----------
    truth : GroundTruth
        The main sequence's ground truth.
    synth_info : dict
        Its ``synth.json``.
    bench_res, score, scaling : dict
        :func:`evaluation.bench.run_bench`, :func:`evaluation.metrics.score`
        of the pipeline's CPU run, :func:`evaluation.bench.run_scaling`.
    calibration : str or None
        ``python -m gallery calibrate`` output (None: no section).
    plots : dict
        :func:`make_plots`' result; a missing plot is left out.
    commands : list of str
        The command lines, listed last.
    quick : bool
        Say that this is a smoke test.
    validation : list of (seed, run_bench result), optional
        Per-seed accuracy table (:func:`validation_table`).
    real : dict, optional
        :func:`score_labelled_clip`'s result.
    by_height : list of (str, dict), optional
        Titled scores whose naming-by-height tables are shown (:func:`_md_by_height`).
    """
    L = ["# Evaluation report", ""]
    if quick:
        L += ["**Quick run (small sizes): a smoke test, not the figures for the README.**", ""]
    L += _md_sequence(truth, synth_info) + _md_settings(bench_res) + _md_targets(score, bench_res)
    L += _md_accuracy(score, validation, real) + (_md_by_height(by_height) if by_height else [])
    L += _md_speed(bench_res, plots) + _md_scaling(scaling, plots)
    if calibration:
        L += ["## Verification pairs (`python -m gallery calibrate`)", "", "```", calibration.rstrip(), "```", ""]
        L += ["![calibration](calibration.png)", ""]
    L += ["## Commands", "", "```"] + commands + ["```", ""]
    return "\n".join(L)


def _md_sequence(truth, synth_info: dict) -> List[str]:
    """Markdown lines: where the figures come from and the simulator sequence in one paragraph."""
    return ["Produced by `python -m evaluation report`; every figure below comes from the files next to this one.",
            "", "## The sequence", "",
            f"Simulator sequence: {synth_info['num_frames']} frames, {synth_info['width']}x{synth_info['height']} "
            f"at {synth_info['fps']:g} fps, seed {synth_info['seed']}, {synth_info['num_shots']} shots "
            f"({len(truth.cuts)} hard cuts), {len(truth.identities)} people "
            f"({sum(i.enrolled for i in truth.identities.values())} enrolled), {len(truth.boxes)} gt boxes; "
            f"paths: {', '.join(f'{k} {v}' for k, v in synth_info['paths'].items())}.", ""]


def _md_settings(bench_res: dict) -> List[str]:
    """Markdown lines: the pipeline and identifier settings of the bench and
    its machine (this machine, said so, for a ``bench.json`` without one)."""
    from .bench import environment, format_environment

    cfg = bench_res.get("config", {})
    L = ["Settings (`configs/default.yaml` at the time of the run): "
         + "; ".join(f"{sec}: " + ", ".join(f"{k}={v}" for k, v in sorted(cfg.get(sec, {}).items()))
                     for sec in ("pipeline", "identifier") if cfg.get(sec)), ""]
    if not bench_res.get("environment"):  # a bench.json from before the environment was recorded
        L += [f"Machine (read when this page was written, not by the timed runs): "
              f"{format_environment(environment())}.", ""]
    else:
        L += [f"Machine of the timed runs: {format_environment(bench_res['environment'])}.", ""]
    return L


def _md_targets(score: dict, bench_res: dict) -> List[str]:
    """Markdown lines: the targets table (:func:`targets`) with how the speed was measured."""
    L = ["## Targets (CPU, default settings)", "",
         "Wall-clock figures were measured on a machine shared with other jobs (2 cores); the CPU-time ratio "
         "in the speed section is less sensitive to that"
         + (f", and each speed figure is the median of {bench_res.get('repeats', 1)} timed runs, the pipeline's "
            "and the baseline's interleaved" if bench_res.get("repeats", 1) > 1 else "") + ".", "",
         "| target | measured | goal | met |", "|---|---|---|---|"]
    for label, v, goal, met in targets(score, bench_res):
        L.append(f"| {label} | {_fmt(v, '.3f') if isinstance(v, float) else v} | {goal} | "
                 f"{'yes' if met else '**no**'} |")
    return L


def _md_accuracy(score: dict, validation, real: Optional[dict]) -> List[str]:
    """Markdown lines: the pipeline's tracking and naming table, then the
    other seeds' table (when ``validation``) and the hand-labelled clip's
    (when ``real``)."""
    from . import metrics

    L = ["", "## Tracking and naming (pipeline, CPU run)", "", metrics.format_table(score), ""]
    if validation:
        L += ["## Other simulator seeds (same settings; accuracy only)", "",
              "Which seeds were looked at while the defaults were tuned is written in the README (\"Evaluation and "
              "measured figures\"). Wrong names count names given to enrolled people's boxes that are not theirs "
              "and names given to people who are not enrolled.", ""] + validation_table(validation) + [""]
    if real:
        L += ["## A real clip with hand labels", "",
              f"`{Path(real['clip']).name}`, {real['labelled_frames']} hand-labelled frames "
              f"(`evaluation/labels/`; how they were made is in the README there), pipeline with the default "
              "settings on the CPU, scored on the labelled frames only. Boxes that nobody labelled (blurred "
              "background faces) count as false positives.", "", metrics.format_table(real["score"]), ""]
    return L


def _md_speed(bench_res: dict, plots: dict) -> List[str]:
    """Markdown lines: the speed tables (:func:`evaluation.bench.format_bench`)
    with the stages plot, and the accuracy-versus-threshold plot, each when drawn."""
    from .bench import format_bench

    L = ["## Speed: pipeline vs naive baseline", "",
         "Naive baseline: detect and embed every face on every frame, name each face on its own against the "
         "gallery (no tracking). Both run through the same loop with the overlay and an mp4 sink. "
         "Peak RSS is the process's resident memory during the run.", "", format_bench(bench_res, machine=False)]
    if "stages" in plots:
        L += [f"![per-stage latency]({plots['stages']})", ""]
    if "threshold" in plots:
        L += ["## Accuracy versus threshold (per-face naming)", "",
              f"![accuracy vs threshold]({plots['threshold']})", ""]
    return L


def _md_scaling(scaling: dict, plots: dict) -> List[str]:
    """Markdown lines: the faces-per-frame and gallery-size tables of
    ``scaling`` and their plots, each when drawn."""
    L = ["## Scaling", "", f"Device {scaling['device']}, {scaling['frames']} frames per point.", "",
         "| faces per frame (cast) | mean gt boxes / frame | pipeline FPS | baseline FPS | pipeline CPU ms/frame "
         "| baseline CPU ms/frame | pipeline peak RSS (MiB) | baseline peak RSS (MiB) |",
         "|---|---|---|---|---|---|---|---|"]
    for r in scaling.get("faces", []):
        L.append(f"| {r['faces_per_frame']} | {r['mean_gt_boxes_per_frame']:.1f} | {r['pipeline']['fps']:.2f} | "
                 f"{r['baseline']['fps']:.2f} | {r['pipeline'].get('cpu_ms_per_frame', float('nan')):.0f} | "
                 f"{r['baseline'].get('cpu_ms_per_frame', float('nan')):.0f} | {r['pipeline']['peak_rss_mb']:.0f} | "
                 f"{r['baseline']['peak_rss_mb']:.0f} |")
    modes = sorted({r.get("score_mode", "?") for r in scaling.get("gallery", [])})
    L += ["", f"Gallery sizes: the enrolled embeddings padded with random unit vectors (5 per made-up person); "
          f"score mode {', '.join(modes)} (with `mean` the index keeps one template per person, so memory and "
          "query time follow the number of people).", "",
          "| gallery embeddings | people | query of 5 faces (ms) | pipeline FPS | identify (ms/frame) | "
          "peak RSS (MiB) |", "|---|---|---|---|---|---|"]
    for r in scaling.get("gallery", []):
        L.append(f"| {r['embeddings']} | {r['people']} | {r['query_ms_5_faces']:.2f} | {r['fps']:.2f} | "
                 f"{r['identify_ms']:.2f} | {r['peak_rss_mb']:.0f} |")
    L.append("")
    for k in ("faces", "gallery"):
        if k in plots:
            L += [f"![scaling {k}]({plots[k]})", ""]
    return L
